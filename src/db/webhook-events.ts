import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { epochMs } from "./columns";

/** Stripe webhook events, one row per event id: a repeat delivery changes nothing. */
export const webhookEvents = sqliteTable(
  "webhook_events",
  {
    /** Stripe's event id (`evt_...`). */
    id: text("id").primaryKey(),
    type: text("type").notNull(),
    officeId: text("office_id"),
    stripeObjectId: text("stripe_object_id"),
    /** `rejected`: signed, but its metadata disagrees with the Stripe ids we stored (`error: binding_mismatch`), or rendered with another API version than the pinned one (`error: api_version_mismatch`, no office); never applied. */
    status: text("status", { enum: ["received", "processed", "ignored", "failed", "rejected"] }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    /** Stripe's `created` for the event, epoch ms. */
    stripeCreatedAt: epochMs("stripe_created_at").notNull(),
    payload: text("payload", { mode: "json" }).notNull(),
    error: text("error"),
    receivedAt: epochMs("received_at").notNull(),
    processedAt: epochMs("processed_at"),
  },
  (t) => [
    index("webhook_events_office_ix").on(t.officeId, t.receivedAt),
    index("webhook_events_status_ix").on(t.status, t.type),
  ],
);
