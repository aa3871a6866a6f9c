import type { patientEvents } from "../db/patients";
import { sha256HexSync } from "../security/sha256";

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
  return Promise.resolve(eventRequestHashSync(kind, patientKey, occurredAt));
}

/** `eventRequestHash` computed at once (src/security/sha256.ts): a bulk request's thousand hashes without an await each. */
export function eventRequestHashSync(kind: PatientEventKind, patientKey: string, occurredAt: number): string {
  return sha256HexSync(eventCanonicalJson(kind, patientKey, occurredAt));
}

/**
 * `canonicalJson({ kind, patientKey, occurredAt })` written out (keys in order; a kind and a hex
 * pseudonym need no escaping, a millisecond time is an integer): a bulk request hashes a thousand.
 */
export function eventCanonicalJson(kind: PatientEventKind, patientKey: string, occurredAt: number): string {
  return `{"kind":${JSON.stringify(kind)},"occurredAt":${JSON.stringify(occurredAt)},"patientKey":${JSON.stringify(patientKey)}}`;
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
