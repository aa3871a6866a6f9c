import { sql, type SQL } from "drizzle-orm";
import type { Cycle } from "../billing/calendar";
import { patientTierLines } from "../billing/invoice";
import type { TierCharge } from "../billing/pricing";
import type { Database } from "../db/client";
import { invoiceLines } from "../db/invoices";
import { newId } from "../security/request-id";

type LineRow = typeof invoiceLines.$inferSelect;

/**
 * A closed cycle's patients lines as invoice lines (docs/payment-plan.md §6.1): one per tier that
 * charges, quantity × unit price, over the cycle, first on the invoice (position 0, ordered by
 * rank). What the close inserts and what the upcoming-invoice preview shows.
 */
export function tierLineRows(invoiceId: string, cycle: Cycle, tiers: readonly TierCharge[], includedPatients: number, createdAt: number): Omit<LineRow, "id">[] {
  return patientTierLines(cycle.start, tiers, includedPatients).map((line) => ({
    ...line,
    invoiceId,
    kind: "patients",
    category: null,
    internalNote: null,
    periodStart: cycle.start,
    periodEnd: cycle.end,
    position: 0,
    createdAt,
  }));
}

/** The statements that insert those lines, each only when `when` holds inside the batch. */
export function tierLineStatements(db: Database, invoiceId: string, cycle: Cycle, tiers: readonly TierCharge[], includedPatients: number, when: SQL) {
  return tierLineRows(invoiceId, cycle, tiers, includedPatients, 0).map((line) =>
    db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, unit_amount, rank_from, rank_to, amount, period_start, period_end, position)
      SELECT ${newId("il")}, ${invoiceId}, ${line.kind}, ${line.description}, ${line.quantity}, ${line.unitAmount}, ${line.rankFrom}, ${line.rankTo}, ${line.amount},
        ${line.periodStart}, ${line.periodEnd}, ${line.position} WHERE ${when}`),
  );
}

/**
 * When a draft is finalized its running patients line gives way to tier lines, and no
 * zero-amount line stays (§6.1): the statement that clears them, before `tierLineStatements`.
 */
export function clearDraftLines(db: Database, draftId: string, when: SQL) {
  return db.run(sql`DELETE FROM ${invoiceLines} WHERE invoice_id = ${draftId} AND (kind = 'patients' OR amount = 0) AND ${when}`);
}
