import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { patientEvents, patients } from "../db/patients";

export type PatientEventKind = "activate" | "deactivate";

/** What the route hands the office object: a pseudonymous patient and hashes, never the raw ids. */
export type PatientEventInput = {
  kind: PatientEventKind;
  patientKey: string;
  occurredAt: number;
  idempotencyKeyHash: string;
  requestHash: string;
};

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
  active: boolean;
};

/**
 * The statements of one patient event, for a single batch: record the event, apply it to the
 * patient's state unless a later event already was (event time decides, not arrival order), and
 * record whether it was applied. `select` reads the outcome back in the same round trip.
 */
export function patientEventStatements(db: Database, officeId: string, eventId: string, input: PatientEventInput, receivedAt: number) {
  const active = input.kind === "activate";
  return [
    db.insert(patientEvents).values({
      id: eventId,
      officeId,
      patientKey: input.patientKey,
      kind: input.kind,
      eventAt: input.occurredAt,
      receivedAt,
      idempotencyKey: input.idempotencyKeyHash,
      requestHash: input.requestHash,
    }),
    db
      .insert(patients)
      .values({ officeId, patientKey: input.patientKey, active, changedAt: input.occurredAt })
      .onConflictDoUpdate({
        target: [patients.officeId, patients.patientKey],
        set: { active, changedAt: input.occurredAt },
        setWhere: sql`excluded.changed_at >= ${patients.changedAt}`,
      }),
    db
      .update(patientEvents)
      .set({
        applied: sql`(SELECT ${patients.changedAt} = ${input.occurredAt} AND ${patients.active} = ${active ? 1 : 0} FROM ${patients} WHERE ${patients.officeId} = ${officeId} AND ${patients.patientKey} = ${input.patientKey})`,
      })
      .where(eq(patientEvents.id, eventId)),
  ] as const;
}

/** Reads an event back with the patient's current state (replay after the object lost its store). */
export function eventAnswerQuery(db: Database, officeId: string, idempotencyKeyHash: string) {
  return db
    .select({ event: patientEvents, active: patients.active })
    .from(patientEvents)
    .innerJoin(patients, and(eq(patients.officeId, patientEvents.officeId), eq(patients.patientKey, patientEvents.patientKey)))
    .where(and(eq(patientEvents.officeId, officeId), eq(patientEvents.idempotencyKey, idempotencyKeyHash)));
}

export function answerFrom(event: typeof patientEvents.$inferSelect, active: boolean): PatientEventAnswer {
  return {
    eventId: event.id,
    officeId: event.officeId,
    patientKey: event.patientKey,
    kind: event.kind,
    occurredAt: new Date(event.eventAt).toISOString(),
    receivedAt: new Date(event.receivedAt).toISOString(),
    applied: event.applied,
    active,
  };
}
