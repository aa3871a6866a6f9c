import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt, epochMs } from "./columns";
import { invoices } from "./invoices";

export const refundReasons = ["duplicate", "requested_by_customer", "billing_error", "service_issue"] as const;
export const refundStatuses = ["pending", "succeeded", "failed"] as const;

/**
 * A refund of a paid invoice, full or partial (platform_admin). Recorded `pending` before Stripe is
 * asked, so a refund whose request fails is retried by the office's outbox and never lost; the
 * invoice's `amount_refunded` moves only when Stripe has made it. The reason is a fixed category,
 * never free text.
 */
export const refunds = sqliteTable(
  "refunds",
  {
    id: text("id").primaryKey(),
    officeId: text("office_id").notNull(),
    invoiceId: text("invoice_id")
      .notNull()
      .references(() => invoices.id),
    amount: integer("amount").notNull(),
    reason: text("reason", { enum: refundReasons }).notNull(),
    status: text("status", { enum: refundStatuses }).notNull().default("pending"),
    /** Stripe refund id, encrypted at rest, and its keyed HMAC. */
    stripeRefundRef: text("stripe_refund_ref"),
    stripeRefundIndex: text("stripe_refund_index"),
    errorCode: text("error_code"),
    requestedBy: text("requested_by").notNull(),
    createdAt: createdAt(),
    updatedAt: epochMs("updated_at").notNull(),
  },
  (t) => [
    index("refunds_invoice_ix").on(t.invoiceId, t.createdAt),
    index("refunds_pending_ix").on(t.status, t.officeId),
    uniqueIndex("refunds_stripe_refund_uq").on(t.stripeRefundIndex),
    check("refunds_amount_ck", sql`${t.amount} > 0`),
    check("refunds_status_ck", sql`${t.status} IN ('pending','succeeded','failed')`),
  ],
);
