import { and, eq, sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/client";
import { currentDraftId, currentPatientsLineId, repricePatientsLine, retotalInvoice } from "../db/billing-sql";
import { invoicePatients, invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { patientEvents, patients } from "../db/patients";
import { canonicalJson } from "../security/audit-chain";
import { sha256Hex } from "../security/crypto";

export type PatientEventKind = "activate" | "deactivate";

/**
 * The event-time window (docs/payment-plan.md §5.8): an event may be dated at most this many days
 * before the office's first billed day (00:00 UTC of its billing start date). Only the state a
 * patient has when the office's first cycle starts is billed, so an older activation reports the
 * same billing as one dated at the window's start; anything older is a typo or a corrupt clock.
 */
export const EVENT_WINDOW_DAYS = 366;
/** The earliest first day an office may have (onboarding's `startsOn`). */
export const EARLIEST_BILLING_START = "2000-01-01";

/** The earliest instant an event may be dated for an office whose billing starts on `billingStart`. */
export function earliestEventAt(billingStart: string): number {
  return Date.parse(`${billingStart}T00:00:00Z`) - EVENT_WINDOW_DAYS * 86_400_000;
}

/**
 * What the route hands the office object: a pseudonymous patient, under version 1 of the
 * pseudonym chain, and the Idempotency-Key's hash; never the raw ids.
 */
export type PatientEventRequest = {
  kind: PatientEventKind;
  rootPatientKey: string;
  occurredAt: number;
  idempotencyKeyHash: string;
};

/** The event as the office object records it: the pseudonym under the office's version. */
export type PatientEventInput = {
  kind: PatientEventKind;
  patientKey: string;
  occurredAt: number;
  idempotencyKeyHash: string;
  requestHash: string;
};

/**
 * The hash that tells a replay of an Idempotency-Key from a conflicting reuse: over the event as
 * recorded (the pseudonym under the office's version), so a key rotation recomputes it per row.
 */
export function eventRequestHash(kind: PatientEventKind, patientKey: string, occurredAt: number): Promise<string> {
  return sha256Hex(canonicalJson({ kind, patientKey, occurredAt }));
}

/** The answer to an activation or deactivation, replayed as is for the same Idempotency-Key. */
export type PatientEventAnswer = {
  eventId: string;
  officeId: string;
  patientKey: string;
  kind: PatientEventKind;
  occurredAt: string;
  receivedAt: string;
  /** False when the patient's state already reflected a later event (out-of-order report). */
  applied: boolean;
  /** The patient's state right after this event. */
  active: boolean;
};

/** An event row that exists: the condition every follow-up statement of the batch depends on. */
const eventRecorded = (eventId: string) => sql`EXISTS (SELECT 1 FROM ${patientEvents} WHERE ${patientEvents.id} = ${eventId})`;

/**
 * One patient event as a single batch (one round trip, one transaction). It reads what it needs
 * to decide, and writes only when the decision inside the batch allows it:
 * 0. the event already recorded under this Idempotency-Key, if any (a replay);
 * 1. the office's status and billing start (no such office; canceled; an event dated before the
 *    window, `earliestEventAt`);
 * 2. the event, inserted only if the office exists, takes it (a canceled office takes no
 *    activations; no office takes an event dated before its window) and the key is new;
 * 3. the patient's state, applied only if this event was recorded and no later event already was
 *    (event time decides, not arrival order; at one instant a deactivation outweighs an
 *    activation, docs/payment-plan.md §5.2);
 * 4. whether it was applied, and the state after it, stored with the event (the replayable answer);
 * 5. the current draft invoice, a preview the close recomputes from the history
 *    (docs/payment-plan.md §5.4–5.5): a patient active after the event is counted in it (once); a
 *    late deactivation removes a patient active at no instant of the cycle; the patients line is
 *    recounted and repriced, the invoice re-totalled;
 * then the caller's audit entry (conditional on `recordedCondition`), and the answer.
 */
export function patientEventBatch(db: Database, officeId: string, eventId: string, input: PatientEventInput, receivedAt: number) {
  const active = input.kind === "activate";
  // Same bound as earliestEventAt, in SQL: 00:00 UTC of the billing start, less the window.
  const inWindow = sql`${input.occurredAt} >= CAST(strftime('%s', ${offices.billingStart}) AS INTEGER) * 1000 - ${EVENT_WINDOW_DAYS * 86_400_000}`;
  const officeTakesIt = active
    ? sql`EXISTS (SELECT 1 FROM ${offices} WHERE ${offices.id} = ${officeId} AND ${offices.status} != 'canceled' AND ${inWindow})`
    : sql`EXISTS (SELECT 1 FROM ${offices} WHERE ${offices.id} = ${officeId} AND ${inWindow})`;
  const keyIsNew = sql`NOT EXISTS (SELECT 1 FROM ${patientEvents} WHERE ${patientEvents.officeId} = ${officeId} AND ${patientEvents.idempotencyKey} = ${input.idempotencyKeyHash})`;
  const before = [
    answerQuery(db, and(eq(patientEvents.officeId, officeId), eq(patientEvents.idempotencyKey, input.idempotencyKeyHash))!),
    db.select({ status: offices.status, billingStart: offices.billingStart }).from(offices).where(eq(offices.id, officeId)),
  ] as const;
  const writes = [
    db.run(sql`INSERT INTO ${patientEvents} (id, office_id, patient_key, kind, event_at, received_at, idempotency_key, request_hash)
      SELECT ${eventId}, ${officeId}, ${input.patientKey}, ${input.kind}, ${input.occurredAt}, ${receivedAt}, ${input.idempotencyKeyHash}, ${input.requestHash}
      WHERE ${officeTakesIt} AND ${keyIsNew}`),
    db.run(sql`INSERT INTO ${patients} (office_id, patient_key, active, changed_at)
      SELECT ${officeId}, ${input.patientKey}, ${active ? 1 : 0}, ${input.occurredAt} WHERE ${eventRecorded(eventId)}
      ON CONFLICT (office_id, patient_key) DO UPDATE SET active = excluded.active, changed_at = excluded.changed_at
      WHERE excluded.changed_at > ${patients.changedAt} OR (excluded.changed_at = ${patients.changedAt} AND excluded.active = 0)`),
    db
      .update(patientEvents)
      .set({
        applied: sql`(SELECT ${patients.changedAt} = ${input.occurredAt} AND ${patients.active} = ${active ? 1 : 0} FROM ${patients} WHERE ${patients.officeId} = ${officeId} AND ${patients.patientKey} = ${input.patientKey})`,
        activeAfter: sql`(SELECT ${patients.active} FROM ${patients} WHERE ${patients.officeId} = ${officeId} AND ${patients.patientKey} = ${input.patientKey})`,
      })
      .where(eq(patientEvents.id, eventId)),
    // Counted in the open cycle when active after the event (active at some moment of it, or
    // carried in), or when the event is an activation inside the cycle, even if a later
    // deactivation arrived first. An event after the cycle's end (before its close) is not
    // counted in it: the close opens the next cycle with the patients billable in it (§6.3).
    db.run(sql`INSERT INTO ${invoicePatients} (invoice_id, office_id, patient_key, counted_at)
      SELECT ${currentDraftId(officeId)}, ${officeId}, ${input.patientKey}, ${receivedAt}
      WHERE ${eventRecorded(eventId)} AND ${currentDraftId(officeId)} IS NOT NULL
        AND ${input.occurredAt} < (SELECT ${invoices.periodEndAt} FROM ${invoices} WHERE ${invoices.id} = ${currentDraftId(officeId)})
        AND ((SELECT ${patients.active} FROM ${patients} WHERE ${patients.officeId} = ${officeId} AND ${patients.patientKey} = ${input.patientKey}) = 1
          OR (${input.kind} = 'activate' AND ${input.occurredAt} >= (SELECT ${invoices.periodStartAt} FROM ${invoices} WHERE ${invoices.id} = ${currentDraftId(officeId)})))
      ON CONFLICT DO NOTHING`),
    db.run(sql`DELETE FROM ${invoicePatients}
      WHERE ${invoicePatients.invoiceId} = ${currentDraftId(officeId)} AND ${invoicePatients.patientKey} = ${input.patientKey}
        AND ${eventRecorded(eventId)} AND ${input.kind} = 'deactivate'
        AND ${input.occurredAt} < (SELECT ${invoices.periodStartAt} FROM ${invoices} WHERE ${invoices.id} = ${currentDraftId(officeId)})
        AND (SELECT ${patients.active} FROM ${patients} WHERE ${patients.officeId} = ${officeId} AND ${patients.patientKey} = ${input.patientKey}) = 0
        AND NOT EXISTS (SELECT 1 FROM ${patientEvents} e WHERE e.office_id = ${officeId} AND e.patient_key = ${input.patientKey} AND e.kind = 'activate'
          AND e.event_at >= (SELECT ${invoices.periodStartAt} FROM ${invoices} WHERE ${invoices.id} = ${currentDraftId(officeId)}))`),
    db.run(repricePatientsLine(currentPatientsLineId(officeId))),
    db.run(retotalInvoice(currentDraftId(officeId), receivedAt)),
  ] as const;
  return { before, writes, after: answerQuery(db, eq(patientEvents.id, eventId)), recordedCondition: eventRecorded(eventId) };
}

function answerQuery(db: Database, where: SQL) {
  return db.select().from(patientEvents).where(where);
}

export function answerFrom(event: typeof patientEvents.$inferSelect): PatientEventAnswer {
  return {
    eventId: event.id,
    officeId: event.officeId,
    patientKey: event.patientKey,
    kind: event.kind,
    occurredAt: new Date(event.eventAt).toISOString(),
    receivedAt: new Date(event.receivedAt).toISOString(),
    applied: event.applied,
    active: event.activeAfter,
  };
}
