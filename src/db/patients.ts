import { sql } from "drizzle-orm";
import { check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt, epochMs } from "./columns";
import { offices } from "./offices";

/**
 * Billing state of one patient of one office. The patient is known only by its pseudonym
 * `patient_key = HMAC-SHA256(PATIENT_KEY_SECRET, officeId + ":" + patientId)` (hex) at version 1,
 * carried through PATIENT_KEY_CHAIN to the office's `patient_key_version` (docs/security.md, key
 * rotation); the raw clinical identifier is never stored.
 */
export const patients = sqliteTable(
  "patients",
  {
    officeId: text("office_id")
      .notNull()
      .references(() => offices.id),
    patientKey: text("patient_key").notNull(),
    active: integer("active", { mode: "boolean" }).notNull(),
    /** Event time of the latest activation or deactivation applied. */
    changedAt: epochMs("changed_at").notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.officeId, t.patientKey] }),
    index("patients_office_active_ix").on(t.officeId, t.active),
    check("patients_key_ck", sql`length(${t.patientKey}) = 64`),
  ],
);

/** Every activation and deactivation reported by the clinical system, as received. */
export const patientEvents = sqliteTable(
  "patient_events",
  {
    id: text("id").primaryKey(),
    officeId: text("office_id")
      .notNull()
      .references(() => offices.id),
    patientKey: text("patient_key").notNull(),
    kind: text("kind", { enum: ["activate", "deactivate"] }).notNull(),
    eventAt: epochMs("event_at").notNull(),
    receivedAt: epochMs("received_at").notNull(),
    /** HMAC of the Idempotency-Key header of the request that reported it (unique per office). */
    idempotencyKey: text("idempotency_key").notNull(),
    /** SHA-256 of the canonical request, to tell a replay from a conflicting reuse of the key. */
    requestHash: text("request_hash").notNull(),
    /** Whether the event changed the patient's state (false when a later event had already been applied). */
    applied: integer("applied", { mode: "boolean" }).notNull().default(false),
    /** The patient's state right after this event was recorded: part of the answer replayed for its key. */
    activeAfter: integer("active_after", { mode: "boolean" }).notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("patient_events_idempotency_uq").on(t.officeId, t.idempotencyKey),
    index("patient_events_patient_ix").on(t.officeId, t.patientKey, t.eventAt),
    check("patient_events_kind_ck", sql`${t.kind} IN ('activate','deactivate')`),
  ],
);
