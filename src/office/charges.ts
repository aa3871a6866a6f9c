import { eq, sql } from "drizzle-orm";
import { chargeDescriptions, type ChargeCategory } from "../billing/charges";
import type { Database } from "../db/client";
import { currentDraftId, retotalInvoice } from "../db/billing-sql";
import { invoiceLines, invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { planVersions } from "../db/plans";
import { minimumChargeCase } from "../billing/minimum";
import { newId } from "../security/request-id";

export type ChargeInput = { amount: number; category: ChargeCategory; note: string | null; mode: "invoice_now" | "add_to_current" };

/**
 * A one-off charge as one batch: either its own invoice, finalized at once (never below Stripe's
 * minimum charge, §8.9: nothing is written then), or a line on the current draft. The line's description is the category's fixed label; the note stays internal.
 * Nothing is written unless the office exists and is not canceled (checked inside the batch).
 */
export function chargeStatements(db: Database, officeId: string, input: ChargeInput, now: number) {
  const takesCharges = sql`EXISTS (SELECT 1 FROM ${offices} WHERE ${offices.id} = ${officeId} AND ${offices.status} != 'canceled')`;
  const lineId = newId("il");
  const line = (invoiceId: ReturnType<typeof sql> | string, position: ReturnType<typeof sql> | number) =>
    db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, category, internal_note, quantity, amount, position)
      SELECT ${lineId}, ${invoiceId}, 'one_off', ${chargeDescriptions[input.category]}, ${input.category}, ${input.note}, 1, ${input.amount}, ${position}
      WHERE ${takesCharges} AND EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${invoiceId})`);
  if (input.mode === "add_to_current") {
    const draft = currentDraftId(officeId);
    return {
      lineId,
      invoiceId: null,
      statements: [line(draft, sql`(SELECT COALESCE(MAX(position), 0) + 1 FROM ${invoiceLines} WHERE invoice_id = ${draft})`), db.run(retotalInvoice(draft, now))],
      recorded: sql`EXISTS (SELECT 1 FROM ${invoiceLines} WHERE id = ${lineId})`,
    };
  }
  const invoiceId = newId("inv");
  return {
    lineId,
    invoiceId,
    statements: [
      db.run(sql`INSERT INTO ${invoices} (id, office_id, kind, status, currency, period_start, period_end, period_start_at, period_end_at, plan_version_id, subtotal, total, finalized_at, updated_at)
        SELECT ${invoiceId}, o.id, 'one_off', 'open', pv.currency, o.cycle_start, o.cycle_end,
               COALESCE((SELECT period_start_at FROM invoices WHERE id = ${currentDraftId(officeId)}), 0), o.cycle_end_at, pv.id, ${input.amount}, ${input.amount}, ${now}, ${now}
        FROM ${offices} o JOIN plan_versions pv ON pv.id = o.plan_version_id WHERE o.id = ${officeId} AND ${takesCharges}
          AND ${input.amount} >= ${sql.raw(minimumChargeCase("pv.currency"))}`),
      line(invoiceId, 0),
    ],
    recorded: sql`EXISTS (SELECT 1 FROM ${invoiceLines} WHERE id = ${lineId})`,
  };
}

export const chargeReads = (db: Database, officeId: string, lineId: string) => [
  db.select({ status: offices.status, currency: planVersions.currency }).from(offices).innerJoin(planVersions, eq(planVersions.id, offices.planVersionId)).where(eq(offices.id, officeId)),
  db.select().from(invoiceLines).where(eq(invoiceLines.id, lineId)),
] as const;

