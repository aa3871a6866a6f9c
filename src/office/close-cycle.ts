import { eq, or, sql } from "drizzle-orm";
import { localDate, nextCycle, startOfLocalDay, type Cycle } from "../billing/calendar";
import { baseFeeFor, lineDescriptions, whollyInTrial } from "../billing/invoice";
import type { Database } from "../db/client";
import { repricePatientsLine, retotalInvoice } from "../db/billing-sql";
import { invoiceLinePatients, invoiceLines, invoices } from "../db/invoices";
import { offices, type OfficeStatus } from "../db/offices";
import { patients } from "../db/patients";
import { planVersions } from "../db/plans";
import { newId } from "../security/request-id";

/** Round trip 1 of a close: the office, its draft and the plan versions it may move to. */
export function closeReads(db: Database, officeId: string) {
  return [
    db.select().from(offices).where(eq(offices.id, officeId)),
    db.select().from(invoices).where(sql`${invoices.officeId} = ${officeId} AND ${invoices.kind} = 'monthly' AND ${invoices.status} = 'draft'`),
    db
      .select()
      .from(planVersions)
      .where(
        or(
          sql`${planVersions.id} = (SELECT ${offices.planVersionId} FROM ${offices} WHERE ${offices.id} = ${officeId})`,
          sql`${planVersions.id} = (SELECT ${offices.pendingPlanVersionId} FROM ${offices} WHERE ${offices.id} = ${officeId})`,
        ),
      ),
  ] as const;
}

export type CloseState = {
  office: typeof offices.$inferSelect;
  draft: typeof invoices.$inferSelect;
  versions: (typeof planVersions.$inferSelect)[];
};

export type ClosePlan = {
  closedInvoiceId: string;
  period: Cycle;
  nextDraftId: string | null;
  next: Cycle | null;
  status: OfficeStatus;
  statements: ReturnType<Database["run"]>[];
  /** The condition that holds inside the batch only if this close finalized the draft. */
  finalizedByThisClose: ReturnType<typeof sql>;
};

/**
 * Round trip 2 of a close (docs/payment-plan.md §6.3), as one batch: finalize the draft (a
 * compare-and-set on its status; `paid` when its total is 0), open the next cycle's draft with
 * every still-active patient carried in (unless the office cancels at period end), move the
 * office to the next cycle with any pending plan, and let the caller's audit entry ride along.
 * Run twice, the second run's compare-and-set fails and nothing else happens.
 */
export function closeStatements(db: Database, state: CloseState, now: number): ClosePlan {
  const { office, draft } = state;
  const tz = office.timeZone;
  const period: Cycle = { start: office.cycleStart, end: office.cycleEnd };
  const version = state.versions.find((v) => v.id === (office.pendingPlanVersionId ?? office.planVersionId));
  if (!version) throw new Error("plan version of the next cycle not found");
  const canceling = office.cancelAtPeriodEnd;
  const next = canceling ? null : nextCycle(period, office.billingAnchorDay);
  const trialEnd = office.trialEndsAt !== null ? localDate(office.trialEndsAt, tz) : null;
  const status: OfficeStatus = canceling
    ? "canceled"
    : office.status === "trialing" && next && (trialEnd === null || trialEnd <= next.start)
      ? "active"
      : office.status;
  const finalizedByThisClose = sql`EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${draft.id} AND ${invoices.finalizedAt} = ${now})`;
  const statements: ReturnType<Database["run"]>[] = [];
  // A trial that ends inside the closing cycle bills only patients active at some moment after
  // its end (§6.4): patients whose last event before the trial's end deactivated them, and who
  // were not activated again, leave the line before it is frozen.
  if (office.trialEndsAt !== null && trialEnd !== null && period.start < trialEnd && trialEnd < period.end) {
    const patientsLine = sql`(SELECT id FROM ${invoiceLines} WHERE invoice_id = ${draft.id} AND kind = 'patients')`;
    statements.push(
      db.run(sql`DELETE FROM ${invoiceLinePatients} WHERE invoice_line_id = ${patientsLine}
        AND EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${draft.id} AND ${invoices.status} = 'draft')
        AND NOT EXISTS (SELECT 1 FROM patient_events e WHERE e.office_id = ${office.id} AND e.patient_key = invoice_line_patients.patient_key
          AND e.kind = 'activate' AND e.event_at >= ${office.trialEndsAt} AND e.event_at < ${office.cycleEndAt})
        AND (SELECT e.kind FROM patient_events e WHERE e.office_id = ${office.id} AND e.patient_key = invoice_line_patients.patient_key
          AND e.event_at < ${office.trialEndsAt} ORDER BY e.event_at DESC LIMIT 1) = 'deactivate'`),
    );
  }
  // The draft is priced once more with its plan version as it stands at the close (§6.8), then frozen.
  const closingPatientsLine = sql`(SELECT id FROM ${invoiceLines} WHERE invoice_id = ${draft.id} AND kind = 'patients')`;
  statements.push(db.run(repricePatientsLine(closingPatientsLine)), db.run(retotalInvoice(draft.id, now)));
  statements.push(
    db.run(sql`UPDATE ${invoices} SET status = CASE WHEN total = 0 THEN 'paid' ELSE 'open' END, finalized_at = ${now},
      paid_at = CASE WHEN total = 0 THEN ${now} ELSE paid_at END, updated_at = ${now}
      WHERE id = ${draft.id} AND status = 'draft'`),
  );
  let nextDraftId: string | null = null;
  if (next) {
    nextDraftId = newId("inv");
    const patientsLineId = newId("il");
    const inTrial = whollyInTrial(next, trialEnd);
    const baseFee = baseFeeFor(next, version.baseFee, { officeStart: next.start, trialEnd });
    const draftExists = sql`EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${nextDraftId})`;
    statements.push(
      db.run(sql`INSERT INTO ${invoices} (id, office_id, kind, status, currency, period_start, period_end, period_start_at, period_end_at, in_trial, plan_version_id, updated_at)
        SELECT ${nextDraftId}, ${office.id}, 'monthly', 'draft', ${version.currency}, ${next.start}, ${next.end}, ${startOfLocalDay(next.start, tz)}, ${startOfLocalDay(next.end, tz)}, ${inTrial ? 1 : 0}, ${version.id}, ${now}
        WHERE ${finalizedByThisClose}`),
      db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, amount, period_start, period_end, position)
        SELECT ${patientsLineId}, ${nextDraftId}, 'patients', ${lineDescriptions.patients(next.start)}, 0, 0, ${next.start}, ${next.end}, 0 WHERE ${draftExists}`),
      ...(version.baseFee > 0
        ? [
            db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, amount, period_start, period_end, position)
              SELECT ${newId("il")}, ${nextDraftId}, 'base_fee', ${lineDescriptions.baseFee(next.start)}, 1, ${baseFee}, ${next.start}, ${next.end}, 1 WHERE ${draftExists}`),
          ]
        : []),
      // Carry-in: every patient active at the new cycle's start is billable in it (§5.4).
      db.run(sql`INSERT INTO ${invoiceLinePatients} (invoice_line_id, office_id, patient_key, counted_at)
        SELECT ${patientsLineId}, ${office.id}, ${patients.patientKey}, ${now} FROM ${patients}
        WHERE ${patients.officeId} = ${office.id} AND ${patients.active} = 1 AND ${draftExists}`),
      db.run(repricePatientsLine(patientsLineId)),
      db.run(retotalInvoice(nextDraftId, now)),
    );
  }
  statements.push(
    db.run(sql`UPDATE ${offices} SET
        cycle_start = ${next?.start ?? office.cycleStart}, cycle_end = ${next?.end ?? office.cycleEnd},
        cycle_end_at = ${next ? startOfLocalDay(next.end, tz) : office.cycleEndAt},
        plan_version_id = ${version.id}, pending_plan_version_id = NULL, status = ${status},
        canceled_at = ${canceling ? now : office.canceledAt}, updated_at = ${now}
      WHERE id = ${office.id} AND cycle_start = ${office.cycleStart} AND ${finalizedByThisClose}`),
  );
  return { closedInvoiceId: draft.id, period, nextDraftId, next, status, statements, finalizedByThisClose };
}
