import { sql, type SQL } from "drizzle-orm";
import { payableSql } from "../db/billing-sql";
import type { Database } from "../db/client";
import { invoiceLineKinds } from "../db/invoices";
import { daysIn, monthOf, monthsBetween, monthStart, nextMonth } from "./months";

/**
 * The platform's billing figures (docs/analytics.md is the rule book for each one: a sentence and
 * the SQL here). Every query is one statement of a single batch: one database round trip whatever
 * the range. Figures are per currency, never added across currencies; money in minor units.
 */

/** Invoice lines that recur every cycle (MRR): the patients tiers, the base fee and its proration, discounts. */
export const RECURRING_LINE_KINDS = ["patients", "base_fee", "proration", "discount"] as const;
const recurringKinds = sql.raw(RECURRING_LINE_KINDS.map((k) => `'${k}'`).join(","));
/** Every other line kind: what a monthly invoice's total holds besides its recurring lines. */
export const NON_RECURRING_LINE_KINDS = invoiceLineKinds.filter((k) => !(RECURRING_LINE_KINDS as readonly string[]).includes(k));
const nonRecurringKinds = sql.raw(NON_RECURRING_LINE_KINDS.map((k) => `'${k}'`).join(","));

/** Invoices below Stripe's minimum charge whose total moved to a later invoice or was written off (§8.9): never receivable themselves. */
const settledElsewhere = sql.raw(`('carried','written_off')`);

/** Age buckets of past-due amounts, in whole days past due. */
export const AGE_BUCKETS = ["0-30", "31-60", "61-90", "over90"] as const;

export type PlatformQuery = { from: string; to: string; planId?: string; now: number };

/**
 * The plan filter as uncorrelated `IN` lists (each evaluated once per statement, not per row): an
 * invoice priced with one of the plan's versions, or without a version (setup, one-off) of an
 * office on one of them.
 */
const planVersionsOf = (planId: string) => sql`(SELECT pv.id FROM plan_versions pv WHERE pv.plan_id = ${planId})`;
const planOfInvoice = (planId: string | undefined) =>
  planId
    ? sql` AND (i.plan_version_id IN ${planVersionsOf(planId)} OR (i.plan_version_id IS NULL AND i.office_id IN (SELECT o.id FROM offices o WHERE o.plan_version_id IN ${planVersionsOf(planId)})))`
    : sql``;
const planOfOffice = (planId: string | undefined, officeId: SQL) =>
  planId ? sql` AND ${officeId} IN (SELECT o.id FROM offices o WHERE o.plan_version_id IN ${planVersionsOf(planId)})` : sql``;

/**
 * What an invoice asks for in all: its total plus the tax Stripe computed on it (read back after
 * finalization, §11.6), or its total where there is no tax. Receivables, invoiced and past-due
 * amounts count it; MRR does not (tax is not revenue).
 */
const gross = payableSql("i");
/** Credit notes that count (pending: asked of Stripe; issued). */
const creditCounts = sql`('pending','issued')`;
/** What credit notes took off an open invoice's amount due (settlement `none`, §8.10). */
const openCredits = sql`(SELECT COALESCE(SUM(c.amount), 0) FROM credit_notes c WHERE c.invoice_id = i.id AND c.settlement = 'none' AND c.status IN ${creditCounts})`;
const utcMonth = (column: SQL) => sql`strftime('%Y-%m', ${column} / 1000, 'unixepoch')`;

/** The statements of one platform analytics request (exported for the docs test and the bench). */
export function platformStatements(q: PlatformQuery) {
  const fromAt = monthStart(q.from);
  const toAt = monthStart(nextMonth(q.to));
  const monthlyInRange = sql`i.kind = 'monthly' AND i.period_start >= ${`${q.from}-01`} AND i.period_start < ${`${nextMonth(q.to)}-01`}`;
  const recurring = sql`(SELECT COALESCE(SUM(l.amount), 0) FROM invoice_lines l WHERE l.invoice_id = i.id AND l.kind IN (${recurringKinds}))`;
  return {
    // Cycles by the month of their first local day: MRR (closed and projected), active offices, billable patients.
    // MRR is the invoices' totals less their non-recurring lines (next statement): a scan of the
    // invoices without a lookup of each one's lines (240,000 invoices: see docs/performance.md).
    cycles: sql`SELECT substr(i.period_start, 1, 7) AS month, i.currency AS currency,
        SUM(CASE WHEN i.status IN ('open','paid','uncollectible') THEN i.total ELSE 0 END) AS closed_total,
        SUM(CASE WHEN i.status = 'draft' THEN i.total ELSE 0 END) AS draft_total,
        COUNT(DISTINCT CASE WHEN i.in_trial = 0 THEN i.office_id END) AS active_offices,
        SUM(i.billable_patients) AS billable_patients
      FROM invoices i
      WHERE ${monthlyInRange} AND i.status <> 'void'${planOfInvoice(q.planId)}
      GROUP BY 1, 2`,
    // The non-recurring lines (setup fee, one-off charges, balances carried in) of those invoices:
    // one scan of the lines (CROSS JOIN keeps them the outer loop), an invoice looked up per such line.
    nonRecurring: sql`SELECT substr(i.period_start, 1, 7) AS month, i.currency AS currency,
        SUM(CASE WHEN i.status IN ('open','paid','uncollectible') THEN l.amount ELSE 0 END) AS closed,
        SUM(CASE WHEN i.status = 'draft' THEN l.amount ELSE 0 END) AS draft
      FROM invoice_lines l CROSS JOIN invoices i
      WHERE i.id = l.invoice_id AND l.kind IN (${nonRecurringKinds}) AND ${monthlyInRange} AND i.status <> 'void'${planOfInvoice(q.planId)}
      GROUP BY 1, 2`,
    // One scan of the invoices finalized before the range's end: receivables' movements by month
    // (UTC) — + total when finalized, − total when paid or voided; summed up to a month's end, what
    // was owed then — and, for the months of the range, what was invoiced and collected. (`+` keeps
    // the finalization index out: nearly every invoice is finalized before the range's end, and a
    // scan reads them faster than 240,000 index lookups.)
    ledger: sql`SELECT month, currency, SUM(delta) AS delta, SUM(invoiced) AS invoiced, SUM(collected) AS collected FROM (
        SELECT ${utcMonth(sql`i.finalized_at`)} AS month, i.currency AS currency, ${gross} AS delta,
            CASE WHEN i.finalized_at >= ${fromAt} AND i.status <> 'void' THEN ${gross} ELSE 0 END AS invoiced,
            CASE WHEN i.finalized_at >= ${fromAt} AND i.status <> 'void' THEN i.amount_paid ELSE 0 END AS collected
          FROM invoices i WHERE +i.finalized_at < ${toAt} AND i.status <> 'draft' AND i.stripe_state NOT IN ${settledElsewhere}${planOfInvoice(q.planId)}
        UNION ALL
        SELECT ${utcMonth(sql`CASE i.status WHEN 'paid' THEN i.paid_at ELSE i.voided_at END`)}, i.currency, -(${gross} - ${openCredits}), 0, 0
          FROM invoices i WHERE i.finalized_at < ${toAt} AND i.total <> 0 AND i.stripe_state NOT IN ${settledElsewhere}
            AND ((i.status = 'paid' AND i.paid_at < ${toAt}) OR (i.status = 'void' AND i.voided_at < ${toAt}))${planOfInvoice(q.planId)}
        UNION ALL
        SELECT ${utcMonth(sql`c.created_at`)}, i.currency, -c.amount, 0, 0
          FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id
          WHERE c.settlement = 'none' AND c.status IN ${creditCounts} AND c.created_at < ${toAt} AND i.stripe_state NOT IN ${settledElsewhere}${planOfInvoice(q.planId)}
      ) GROUP BY 1, 2`,
    // Past due now, by age in whole days since the invoice was due (send_invoice: its due date; charged automatically: its finalization).
    pastDue: sql`SELECT currency,
        SUM(CASE WHEN age <= 30 THEN owed ELSE 0 END) AS d0_30,
        SUM(CASE WHEN age BETWEEN 31 AND 60 THEN owed ELSE 0 END) AS d31_60,
        SUM(CASE WHEN age BETWEEN 61 AND 90 THEN owed ELSE 0 END) AS d61_90,
        SUM(CASE WHEN age > 90 THEN owed ELSE 0 END) AS over90,
        COUNT(*) AS invoices
      FROM (SELECT i.currency AS currency, ${gross} - ${openCredits} - i.amount_paid AS owed,
              (${q.now} - COALESCE(i.due_at, i.finalized_at, i.created_at)) / 86400000 AS age
            FROM invoices i
            WHERE i.status IN ('open','uncollectible') AND ${gross} - ${openCredits} > i.amount_paid
              AND (i.status = 'uncollectible' OR i.payment_failed_at IS NOT NULL OR i.due_at < ${q.now})${planOfInvoice(q.planId)})
      GROUP BY 1`,
    // Stripe's payment outcomes per invoice in the month (UTC), from the webhook events we recorded and applied.
    payments: sql`SELECT ${utcMonth(sql`e.stripe_created_at`)} AS month, json_extract(e.payload, '$.data.object.currency') AS currency,
        COUNT(DISTINCT CASE WHEN e.type = 'invoice.payment_failed' THEN e.stripe_object_id END) AS failed,
        COUNT(DISTINCT e.stripe_object_id) AS attempted
      FROM webhook_events e
      WHERE e.status = 'processed' AND e.type IN ('invoice.payment_failed','invoice.paid') AND e.stripe_created_at >= ${fromAt} AND e.stripe_created_at < ${toAt}${planOfOffice(q.planId, sql`e.office_id`)}
      GROUP BY 1, 2`,
    // Refunds Stripe made, by the month (UTC) they were requested; credit notes (pending or issued) by the month they were made.
    refunds: sql`SELECT month, currency, SUM(refunded) AS amount, SUM(refund) AS count, SUM(credited) AS credits, SUM(credit) AS credit_count FROM (
        SELECT ${utcMonth(sql`r.created_at`)} AS month, i.currency AS currency, r.amount AS refunded, 1 AS refund, 0 AS credited, 0 AS credit
          FROM refunds r JOIN invoices i ON i.id = r.invoice_id
          WHERE r.status = 'succeeded' AND r.created_at >= ${fromAt} AND r.created_at < ${toAt}${planOfInvoice(q.planId)}
        UNION ALL
        SELECT ${utcMonth(sql`c.created_at`)}, i.currency, 0, 0, c.amount, 1
          FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id
          WHERE c.status IN ${creditCounts} AND c.created_at >= ${fromAt} AND c.created_at < ${toAt}${planOfInvoice(q.planId)}
      ) GROUP BY 1, 2`,
    // Offices onboarded and canceled in the month (UTC), in their plan's currency.
    offices: sql`SELECT month, currency, SUM(created) AS created, SUM(canceled) AS canceled FROM (
        SELECT ${utcMonth(sql`o.created_at`)} AS month, pv.currency AS currency, 1 AS created, 0 AS canceled
          FROM offices o JOIN plan_versions pv ON pv.id = o.plan_version_id
          WHERE o.created_at >= ${fromAt} AND o.created_at < ${toAt}${q.planId ? sql` AND pv.plan_id = ${q.planId}` : sql``}
        UNION ALL
        SELECT ${utcMonth(sql`o.canceled_at`)}, pv.currency, 0, 1
          FROM offices o JOIN plan_versions pv ON pv.id = o.plan_version_id
          WHERE o.status = 'canceled' AND o.canceled_at >= ${fromAt} AND o.canceled_at < ${toAt}${q.planId ? sql` AND pv.plan_id = ${q.planId}` : sql``}
      ) GROUP BY 1, 2`,
    // The current cycles (one draft per office), as they stand now.
    current: sql`SELECT i.currency AS currency, COUNT(*) AS offices, SUM(i.billable_patients) AS billable_patients,
        SUM(${recurring}) AS mrr, SUM(i.total) AS total
      FROM invoices i WHERE i.kind = 'monthly' AND i.status = 'draft'${planOfInvoice(q.planId)}
      GROUP BY 1`,
  };
}

type Row = Record<string, number | string | null>;
const num = (v: unknown) => (typeof v === "number" ? v : v == null ? 0 : Number(v));

export type MonthFigures = {
  month: string;
  currency: string;
  mrr: number;
  mrrProjected: number;
  arr: number;
  activeOffices: number;
  newOffices: number;
  churnedOffices: number;
  billablePatients: number;
  averageRevenuePerOffice: number | null;
  invoiced: number;
  collected: number;
  collectionRate: number | null;
  receivables: number;
  daysSalesOutstanding: number | null;
  paymentsAttempted: number;
  paymentsFailed: number;
  failedPaymentRate: number | null;
  refunds: number;
  refundCount: number;
  credits: number;
  creditCount: number;
};

export type PlatformAnalytics = {
  from: string;
  to: string;
  planId: string | null;
  asOf: string;
  months: MonthFigures[];
  pastDue: { currency: string; "0-30": number; "31-60": number; "61-90": number; over90: number; invoices: number }[];
  currentCycles: { currency: string; offices: number; billablePatients: number; mrrProjected: number; arrProjected: number; total: number }[];
};

const ratio = (a: number, b: number, digits = 4) => (b === 0 ? null : Math.round((a / b) * 10 ** digits) / 10 ** digits);

/** Runs the statements in one batch (one round trip) and assembles the figures. */
export async function platformAnalytics(db: Database, q: PlatformQuery): Promise<PlatformAnalytics> {
  const s = platformStatements(q);
  const [cycles, nonRecurring, ledger, pastDue, payments, refunds, offices, current] = (await db.batch([
    db.all<Row>(s.cycles),
    db.all<Row>(s.nonRecurring),
    db.all<Row>(s.ledger),
    db.all<Row>(s.pastDue),
    db.all<Row>(s.payments),
    db.all<Row>(s.refunds),
    db.all<Row>(s.offices),
    db.all<Row>(s.current),
  ])) as unknown as Row[][];
  return assemble(q, { cycles: cycles!, nonRecurring: nonRecurring!, ledger: ledger!, pastDue: pastDue!, payments: payments!, refunds: refunds!, offices: offices!, current: current! });
}

function assemble(q: PlatformQuery, r: Record<"cycles" | "nonRecurring" | "ledger" | "pastDue" | "payments" | "refunds" | "offices" | "current", Row[]>): PlatformAnalytics {
  const months = monthsBetween(q.from, q.to);
  const currencies = new Set<string>();
  const byKey = (rows: Row[]) => {
    const m = new Map<string, Row>();
    for (const row of rows) {
      if (typeof row.currency !== "string") continue;
      currencies.add(row.currency);
      m.set(`${row.month}|${row.currency}`, row);
    }
    return m;
  };
  const cycles = byKey(r.cycles);
  const nonRecurring = byKey(r.nonRecurring);
  const finalized = byKey(r.ledger.filter((row) => typeof row.month === "string" && row.month >= q.from));
  const payments = byKey(r.payments);
  const refunds = byKey(r.refunds);
  const offices = byKey(r.offices);
  // Receivables: movements before the range open its balance; each month adds its own.
  const movements = new Map<string, Map<string, number>>();
  for (const row of r.ledger) {
    if (typeof row.currency !== "string" || typeof row.month !== "string") continue;
    currencies.add(row.currency);
    const m = movements.get(row.currency) ?? new Map<string, number>();
    const key = row.month < q.from ? "" : row.month;
    m.set(key, (m.get(key) ?? 0) + num(row.delta));
    movements.set(row.currency, m);
  }
  const current = monthOf(q.now);
  const out: MonthFigures[] = [];
  for (const currency of [...currencies].sort()) {
    let balance = movements.get(currency)?.get("") ?? 0;
    for (const month of months) {
      const k = `${month}|${currency}`;
      const c = cycles.get(k) ?? {};
      const n = nonRecurring.get(k) ?? {};
      const f = finalized.get(k) ?? {};
      const p = payments.get(k) ?? {};
      const rf = refunds.get(k) ?? {};
      const o = offices.get(k) ?? {};
      balance += movements.get(currency)?.get(month) ?? 0;
      const mrr = num(c.closed_total) - num(n.closed);
      const mrrProjected = mrr + num(c.draft_total) - num(n.draft);
      const activeOffices = num(c.active_offices);
      const invoiced = num(f.invoiced);
      // The month so far for the current one; a whole month otherwise.
      const days = month === current ? Math.max(1, Math.ceil((q.now - monthStart(month)) / 86_400_000)) : daysIn(month);
      out.push({
        month,
        currency,
        mrr,
        mrrProjected,
        arr: 12 * mrrProjected,
        activeOffices,
        newOffices: num(o.created),
        churnedOffices: num(o.canceled),
        billablePatients: num(c.billable_patients),
        averageRevenuePerOffice: activeOffices === 0 ? null : Math.round(mrrProjected / activeOffices),
        invoiced,
        collected: num(f.collected),
        collectionRate: ratio(num(f.collected), invoiced),
        receivables: balance,
        daysSalesOutstanding: invoiced === 0 ? null : Math.round((balance / invoiced) * days * 10) / 10,
        paymentsAttempted: num(p.attempted),
        paymentsFailed: num(p.failed),
        failedPaymentRate: ratio(num(p.failed), num(p.attempted)),
        refunds: num(rf.amount),
        refundCount: num(rf.count),
        credits: num(rf.credits),
        creditCount: num(rf.credit_count),
      });
    }
  }
  return {
    from: q.from,
    to: q.to,
    planId: q.planId ?? null,
    asOf: new Date(q.now).toISOString(),
    months: out,
    pastDue: r.pastDue
      .filter((x) => typeof x.currency === "string")
      .map((x) => ({ currency: x.currency as string, "0-30": num(x.d0_30), "31-60": num(x.d31_60), "61-90": num(x.d61_90), over90: num(x.over90), invoices: num(x.invoices) }))
      .sort((a, b) => a.currency.localeCompare(b.currency)),
    currentCycles: r.current
      .filter((x) => typeof x.currency === "string")
      .map((x) => ({ currency: x.currency as string, offices: num(x.offices), billablePatients: num(x.billable_patients), mrrProjected: num(x.mrr), arrProjected: 12 * num(x.mrr), total: num(x.total) }))
      .sort((a, b) => a.currency.localeCompare(b.currency)),
  };
}
