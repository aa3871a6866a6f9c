import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt, epochMs } from "./columns";
import { invoices } from "./invoices";

/** Stripe's credit-note reasons, exactly (CreditNoteCreateParams.Reason of the pinned SDK). */
export const creditNoteReasons = ["duplicate", "fraudulent", "order_change", "product_unsatisfactory"] as const;
/** The fixed memos a credit note may carry (its Stripe `memo`, printed on the PDF): no free text leaves. */
export const creditNoteMemos = {
  billing_error: "Correction of a billing error",
  service_credit: "Service credit",
  goodwill: "Goodwill credit",
  duplicate_charge: "Credit for a duplicate charge",
  plan_change: "Adjustment for a plan change",
} as const;
export const creditNoteMemoKeys = Object.keys(creditNoteMemos) as [keyof typeof creditNoteMemos, ...(keyof typeof creditNoteMemos)[]];
/** Where a paid invoice's credit goes: back to the payment, or the customer's Stripe balance; `none` on an open invoice (it lowers the amount due). */
export const creditNoteSettlements = ["none", "refund", "customer_balance"] as const;
export const creditNoteStatuses = ["pending", "issued", "void", "failed"] as const;
/** Who made it: this API (`api`), or Stripe's Dashboard, recorded from its events (`stripe`, docs/payment-plan.md §8.10). */
export const creditNoteSources = ["api", "stripe"] as const;

/**
 * A credit note of a finalized invoice (docs/payment-plan.md §8.10), recorded `pending` before
 * Stripe is asked (key `credit_note_<id>`), `issued` with its Stripe id (encrypted, with a keyed
 * index) once Stripe has it. `lines` is the per-line split (JSON `[{lineId, amount}]`) or null
 * for a whole-invoice amount.
 */
export const creditNotes = sqliteTable(
  "credit_notes",
  {
    id: text("id").primaryKey(),
    officeId: text("office_id").notNull(),
    invoiceId: text("invoice_id")
      .notNull()
      .references(() => invoices.id),
    amount: integer("amount").notNull(),
    lines: text("lines", { mode: "json" }).$type<{ lineId: string; amount: number }[]>(),
    /** Stripe's reason; null only for one made outside this API without one (`source: stripe`). */
    reason: text("reason", { enum: creditNoteReasons }),
    /** Our fixed memo; null for one made outside this API (its free-text memo is not kept). */
    memo: text("memo", { enum: creditNoteMemoKeys }),
    settlement: text("settlement", { enum: creditNoteSettlements }).notNull(),
    status: text("status", { enum: creditNoteStatuses }).notNull().default("pending"),
    source: text("source", { enum: creditNoteSources }).notNull().default("api"),
    stripeCreditNoteRef: text("stripe_credit_note_ref"),
    stripeCreditNoteIndex: text("stripe_credit_note_index"),
    errorCode: text("error_code"),
    requestedBy: text("requested_by").notNull(),
    createdAt: createdAt(),
    updatedAt: epochMs("updated_at").notNull(),
  },
  (t) => [
    index("credit_notes_invoice_ix").on(t.invoiceId, t.createdAt),
    index("credit_notes_pending_ix").on(t.status, t.officeId),
    uniqueIndex("credit_notes_stripe_uq").on(t.stripeCreditNoteIndex),
    check("credit_notes_amount_ck", sql`${t.amount} > 0`),
    check("credit_notes_status_ck", sql`${t.status} IN ('pending','issued','void','failed')`),
    check("credit_notes_settlement_ck", sql`${t.settlement} IN ('none','refund','customer_balance')`),
    check("credit_notes_source_ck", sql`${t.source} IN ('api','stripe') AND (${t.source} = 'stripe' OR (${t.reason} IS NOT NULL AND ${t.memo} IS NOT NULL))`),
  ],
);
