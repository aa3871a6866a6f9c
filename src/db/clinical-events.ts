import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt, epochMs } from "./columns";

export const clinicalEventTypes = ["office.status_changed", "invoice.finalized", "invoice.paid", "invoice.payment_failed", "invoice.voided", "cycle.closed"] as const;
export const clinicalDeliveryStatuses = ["pending", "delivered", "failed"] as const;

/**
 * The outbox of events for the clinical application (docs/clinical-events.md). Rows are written
 * by database triggers (migration 0011) in the same transaction as the change they report — an
 * office's status, an invoice's status or failed payment — so no change is committed without its
 * event. `seq` is the office's own sequence (1, 2, 3, …): the office's writes are serialized by its
 * Durable Object and by the database's transaction, and the unique index refuses a duplicate.
 * `data` holds ids, statuses, periods and counts only (an allowlist, src/clinical/events.ts); never
 * a patient.
 */
export const clinicalEvents = sqliteTable(
  "clinical_events",
  {
    id: text("id").primaryKey(),
    officeId: text("office_id").notNull(),
    seq: integer("seq").notNull(),
    type: text("type", { enum: clinicalEventTypes }).notNull(),
    /** JSON: the event's `data` (see src/clinical/events.ts for each type's allowlist). */
    data: text("data").notNull(),
    /** The change's own time (the changed row's `updated_at`, from the injectable clock). */
    occurredAt: epochMs("occurred_at").notNull(),
    status: text("status", { enum: clinicalDeliveryStatuses }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    /** When it was last handed to the delivery queue (null: not yet; the sweep and the office object hand it). */
    queuedAt: epochMs("queued_at"),
    /** First delivery attempt: retries stop three days after it. */
    firstAttemptAt: epochMs("first_attempt_at"),
    lastAttemptAt: epochMs("last_attempt_at"),
    nextAttemptAt: epochMs("next_attempt_at"),
    /** The receiver's HTTP status of the last attempt (null: no answer). */
    lastStatus: integer("last_status"),
    /** A short code of the last failure (`http_500`, `timeout`, `network`, …), never a body. */
    lastError: text("last_error"),
    deliveredAt: epochMs("delivered_at"),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("clinical_events_office_seq_uq").on(t.officeId, t.seq),
    index("clinical_events_status_ix").on(t.status, t.queuedAt),
    // The office object's check after each write: its events not yet handed to the queue.
    index("clinical_events_office_waiting_ix").on(t.officeId).where(sql`${t.status} = 'pending' AND ${t.queuedAt} IS NULL`),
    check("clinical_events_status_ck", sql`${t.status} IN ('pending','delivered','failed')`),
  ],
);
