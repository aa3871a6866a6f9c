import { sql, type SQL } from "drizzle-orm";

/**
 * The graduated tiered amount (docs/payment-plan.md §1.3) computed by the database from a plan
 * version's JSON tiers, so an operation can recount a line and price it in the same batch that
 * changes it. Must agree with `tieredAmount` in src/billing/pricing.ts (a test checks both).
 */
export function tieredAmountSql(quantity: SQL, planVersionId: SQL): SQL {
  return sql`(SELECT COALESCE(SUM(MAX(0, MIN(t.q, COALESCE(t.up, t.q)) - MAX(t.lo, t.inc + 1) + 1) * t.unit), 0) FROM (
    SELECT CAST(json_extract(j.value, '$.upTo') AS INTEGER) AS up,
           CAST(json_extract(j.value, '$.unitAmount') AS INTEGER) AS unit,
           COALESCE(LAG(CAST(json_extract(j.value, '$.upTo') AS INTEGER)) OVER (ORDER BY j.key), 0) + 1 AS lo,
           pv.included_patients AS inc,
           ${quantity} AS q
    FROM plan_versions pv, json_each(pv.tiers) j WHERE pv.id = ${planVersionId}) t)`;
}

/**
 * What an office owes on an invoice, in SQL: its total including tax once read back, else its total
 * (docs/payment-plan.md §11.6; `payable` in src/stripe/invoice-tax.ts is the same rule in code).
 * `alias` is the invoices table's name in the query, if it has one.
 */
export function payableSql(alias?: "i"): SQL {
  const col = (name: string) => (alias ? `${alias}.${name}` : name);
  return sql.raw(`COALESCE(${col("total_including_tax")}, ${col("total")})`);
}

/**
 * Recounts a draft's running patients line from its invoice's mapping and prices it with its plan
 * version (0 in a trial). A finalized invoice is never touched. The mapping is counted once (the
 * FROM clause), for the quantity and the price: a count reads the invoice's whole mapping.
 */
export function repricePatientsLine(lineId: SQL | string): SQL {
  const line = typeof lineId === "string" ? sql`${lineId}` : lineId;
  const invoice = sql`(SELECT invoice_id FROM invoice_lines WHERE id = ${line})`;
  return sql`UPDATE invoice_lines SET quantity = c.n,
    amount = CASE WHEN (SELECT in_trial FROM invoices WHERE id = invoice_lines.invoice_id) THEN 0
             ELSE ${tieredAmountSql(sql`c.n`, sql`(SELECT plan_version_id FROM invoices WHERE id = invoice_lines.invoice_id)`)} END
    FROM (SELECT count(*) AS n FROM invoice_patients m WHERE m.invoice_id = ${invoice}) AS c
    WHERE invoice_lines.id = ${line} AND (SELECT status FROM invoices WHERE id = invoice_lines.invoice_id) = 'draft'`;
}

/**
 * Sets a draft's subtotal and total to the sum of its lines, and its billable patients to the
 * count of its mapping with the allowance of its plan version (kept current until the close).
 */
export function retotalInvoice(invoiceId: SQL | string, now: number): SQL {
  const id = typeof invoiceId === "string" ? sql`${invoiceId}` : invoiceId;
  const sum = sql`(SELECT COALESCE(SUM(amount), 0) FROM invoice_lines WHERE invoice_id = ${id})`;
  return sql`UPDATE invoices SET subtotal = ${sum}, total = ${sum},
      billable_patients = (SELECT count(*) FROM invoice_patients WHERE invoice_id = ${id}),
      included_patients = COALESCE((SELECT included_patients FROM plan_versions WHERE id = invoices.plan_version_id), included_patients),
      updated_at = ${now}
    WHERE id = ${id} AND status = 'draft'`;
}

/** The id of an office's current draft monthly invoice (a scalar subquery). */
export const currentDraftId = (officeId: string) =>
  sql`(SELECT id FROM invoices WHERE office_id = ${officeId} AND kind = 'monthly' AND status = 'draft')`;

/** The patients line of an office's current draft (a scalar subquery). */
export const currentPatientsLineId = (officeId: string) =>
  sql`(SELECT id FROM invoice_lines WHERE invoice_id = ${currentDraftId(officeId)} AND kind = 'patients')`;
