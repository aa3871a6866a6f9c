import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { createdAt, epochMs } from "./columns";

/**
 * Every request made to Stripe, or blocked before it left: the record of what crossed the PHI
 * boundary. The body itself is not kept, only its SHA-256.
 */
export const stripeRequests = sqliteTable(
  "stripe_requests",
  {
    id: text("id").primaryKey(),
    officeId: text("office_id"),
    operation: text("operation").notNull(),
    method: text("method").notNull(),
    path: text("path").notNull(),
    idempotencyKey: text("idempotency_key"),
    bodySha256: text("body_sha256").notNull(),
    status: text("status", { enum: ["sent", "succeeded", "failed", "blocked"] }).notNull(),
    httpStatus: integer("http_status"),
    stripeIds: text("stripe_ids", { mode: "json" }).$type<string[]>(),
    errorCode: text("error_code"),
    requestId: text("request_id"),
    finishedAt: epochMs("finished_at"),
    createdAt: createdAt(),
  },
  (t) => [
    index("stripe_requests_office_ix").on(t.officeId, t.createdAt),
    index("stripe_requests_idempotency_ix").on(t.idempotencyKey),
  ],
);
