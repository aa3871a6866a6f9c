import { sql, type SQL } from "drizzle-orm";
import type { Cycle } from "../billing/calendar";
import { patientTierLines } from "../billing/invoice";
import type { TierCharge } from "../billing/pricing";
import type { Database } from "../db/client";
import { invoiceLines } from "../db/invoices";
import { newId } from "../security/request-id";

/**
 * The statements that give a finalized monthly invoice its patients lines (docs/payment-plan.md
 * §6.1): one per tier that charges, quantity × unit price, first on the invoice (position 0,
 * ordered by rank), each inserted only when `when` holds inside the batch.
 */
export function tierLineStatements(db: Database, invoiceId: string, cycle: Cycle, tiers: readonly TierCharge[], includedPatients: number, when: SQL) {
  return patientTierLines(cycle.start, tiers, includedPatients).map((line) =>
    db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, unit_amount, rank_from, rank_to, amount, period_start, period_end, position)
      SELECT ${newId("il")}, ${invoiceId}, 'patients', ${line.description}, ${line.quantity}, ${line.unitAmount}, ${line.rankFrom}, ${line.rankTo}, ${line.amount},
        ${cycle.start}, ${cycle.end}, 0 WHERE ${when}`),
  );
}

/**
 * When a draft is finalized its running patients line gives way to tier lines, and no
 * zero-amount line stays (§6.1): the statement that clears them, before `tierLineStatements`.
 */
export function clearDraftLines(db: Database, draftId: string, when: SQL) {
  return db.run(sql`DELETE FROM ${invoiceLines} WHERE invoice_id = ${draftId} AND (kind = 'patients' OR amount = 0) AND ${when}`);
}
