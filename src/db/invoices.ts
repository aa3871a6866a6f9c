import { sql } from "drizzle-orm";
import { check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt, epochMs } from "./columns";
import { offices } from "./offices";

export const invoiceKinds = ["monthly", "setup", "one_off"] as const;
export const invoiceStatuses = ["draft", "open", "paid", "void", "uncollectible"] as const;
export const collectionMethods = ["charge_automatically", "send_invoice"] as const;
export const stripeStates = ["none", "draft_created", "finalized", "voided", "abandoned", "failed", "carried", "written_off"] as const;

/**
 * An internal invoice. Exactly one `monthly` invoice per office and cycle (unique index), so a
 * re-run of the invoicing job can never produce a duplicate.
 */
export const invoices = sqliteTable(
  "invoices",
  {
    id: text("id").primaryKey(),
    officeId: text("office_id")
      .notNull()
      .references(() => offices.id),
    kind: text("kind", { enum: invoiceKinds }).notNull(),
    status: text("status", { enum: invoiceStatuses }).notNull().default("draft"),
    currency: text("currency").notNull(),
    /** Billing period as local dates `YYYY-MM-DD`, end exclusive. */
    periodStart: text("period_start").notNull(),
    periodEnd: text("period_end").notNull(),
    /** The period as instants (local midnights in the office's zone). */
    periodStartAt: epochMs("period_start_at").notNull().default(0),
    periodEndAt: epochMs("period_end_at").notNull().default(0),
    /** True when the whole period lies in the office's trial: every line is invoiced at 0. */
    inTrial: integer("in_trial", { mode: "boolean" }).notNull().default(false),
    planVersionId: text("plan_version_id"),
    /**
     * Monthly invoices: the cycle's billable patients (§5.3) and the plan's free allowance, shown
     * even when no line charges them (all within the allowance, or a trial). Kept current on the
     * draft, frozen at the close.
     */
    billablePatients: integer("billable_patients").notNull().default(0),
    includedPatients: integer("included_patients").notNull().default(0),
    subtotal: integer("subtotal").notNull().default(0),
    total: integer("total").notNull().default(0),
    amountPaid: integer("amount_paid").notNull().default(0),
    amountRefunded: integer("amount_refunded").notNull().default(0),
    /** Stripe invoice id, encrypted at rest, and its keyed HMAC for webhook lookups. */
    stripeInvoiceRef: text("stripe_invoice_ref"),
    stripeInvoiceIndex: text("stripe_invoice_index"),
    /**
     * Stripe push progress (docs/payment-plan.md §8): `none` → `draft_created` → `finalized`, then
     * `voided` once a void reached Stripe; `failed` when Stripe refused the push for good (see
     * `stripe_error`); `abandoned` for a draft voided before it was finalized. Zero-total invoices
     * are never sent and stay `none`. Below Stripe's minimum charge (§8.9), never sent either:
     * `carried` (its total is a line of the office's next invoice) or `written_off` (no next one).
     */
    stripeState: text("stripe_state", { enum: stripeStates }).notNull().default("none"),
    /** The last error of the Stripe push or void (a code, never a message from a person). */
    stripeError: text("stripe_error"),
    /** Stripe's invoice number (shown to the office, printed on Stripe's documents), once finalized there. */
    stripeNumber: text("stripe_number"),
    /**
     * Stripe's hosted invoice page and PDF links, encrypted at rest like the other Stripe
     * references (they are bearer links): JSON `{hostedInvoiceUrl, invoicePdf}` sealed per row.
     */
    stripeDocumentsRef: text("stripe_documents_ref"),
    finalizedAt: epochMs("finalized_at"),
    paidAt: epochMs("paid_at"),
    voidedAt: epochMs("voided_at"),
    /** A `send_invoice` invoice's due date on Stripe (its `due_date`): dunning starts there if it is still open (§10). */
    dueAt: epochMs("due_at"),
    /** When Stripe last reported a failed payment attempt (cleared when paid): the dunning state. */
    paymentFailedAt: epochMs("payment_failed_at"),
    /** How Stripe collects it, decided at its first push (docs/payment-plan.md §10); null: not pushed yet. */
    collectionMethod: text("collection_method", { enum: collectionMethods }),
    /** A `send_invoice` invoice's net days, fixed with its collection method at its first push (§10.3). */
    daysUntilDue: integer("days_until_due"),
    /** The invoice's tax basis, fixed at its first push (docs/payment-plan.md §11.4); null: not pushed yet. */
    taxMode: text("tax_mode", { enum: ["none", "stripe_tax", "manual"] }),
    taxRateBps: integer("tax_rate_bps"),
    taxRateName: text("tax_rate_name"),
    /** Stripe's tax on our total and our total plus it, read back after Stripe finalized the invoice (§11.6). */
    taxAmount: integer("tax_amount"),
    totalIncludingTax: integer("total_including_tax"),
    /** A push held for the office's address (§11.7): the profile version it waits to change from. */
    stripeHeldProfile: integer("stripe_held_profile"),

    createdAt: createdAt(),
    updatedAt: epochMs("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("invoices_office_kind_period_uq")
      .on(t.officeId, t.kind, t.periodStart)
      .where(sql`${t.kind} IN ('monthly','setup')`),
    // Exactly one draft monthly invoice per office: the current cycle's.
    uniqueIndex("invoices_one_draft_uq")
      .on(t.officeId)
      .where(sql`${t.kind} = 'monthly' AND ${t.status} = 'draft'`),
    uniqueIndex("invoices_stripe_invoice_uq").on(t.stripeInvoiceIndex),
    index("invoices_office_created_ix").on(t.officeId, t.createdAt),
    index("invoices_status_ix").on(t.status),
    // The accountants' exports page by keyset over these (docs/analytics.md, "Exports"); the
    // platform analytics read finalizations by month.
    index("invoices_finalized_ix").on(t.finalizedAt, t.id),
    index("invoices_paid_ix").on(t.paidAt, t.id),
    // The office outboxes' work: invoices whose Stripe side is not settled yet.
    index("invoices_stripe_pending_ix").on(t.officeId, t.stripeState, t.status),
    check("invoices_kind_ck", sql`${t.kind} IN ('monthly','setup','one_off')`),
    check("invoices_status_ck", sql`${t.status} IN ('draft','open','paid','void','uncollectible')`),
    check("invoices_amounts_ck", sql`${t.amountPaid} >= 0 AND ${t.amountRefunded} >= 0 AND ${t.amountRefunded} <= ${t.amountPaid}`),
    check("invoices_period_ck", sql`${t.periodStart} <= ${t.periodEnd}`),
  ],
);

export const invoiceLineKinds = ["patients", "base_fee", "setup_fee", "proration", "one_off", "carried_balance", "discount"] as const;

/**
 * Aggregated invoice lines: quantities and amounts only, never a patient. A finalized monthly
 * invoice has one `patients` line per tier that charges (docs/payment-plan.md §6.1): ranks
 * `rankFrom`…`rankTo` (null: unbounded), `quantity` × `unitAmount` = `amount`. A draft keeps one
 * running `patients` line (no unit amount) until its close.
 */
export const invoiceLines = sqliteTable(
  "invoice_lines",
  {
    id: text("id").primaryKey(),
    invoiceId: text("invoice_id")
      .notNull()
      .references(() => invoices.id, { onDelete: "cascade" }),
    kind: text("kind", { enum: invoiceLineKinds }).notNull(),
    /** Fixed-template description (e.g. "Active patients 51–200 — Mar 2026"), never free text. */
    description: text("description").notNull(),
    /** One-off category, for `one_off` lines. */
    category: text("category"),
    /** Internal note typed by billing staff: kept here, never sent anywhere. */
    internalNote: text("internal_note"),
    quantity: integer("quantity").notNull(),
    /** Unit price in minor units of a quantity × unit line (tier lines); null for a fixed amount. */
    unitAmount: integer("unit_amount"),
    /** The patient ranks a tier line charges (inclusive; `rankTo` null for the unbounded tier). */
    rankFrom: integer("rank_from"),
    rankTo: integer("rank_to"),
    /** Amount of the line in minor units. */
    amount: integer("amount").notNull(),
    periodStart: text("period_start"),
    periodEnd: text("period_end"),
    position: integer("position").notNull().default(0),
    createdAt: createdAt(),
  },
  (t) => [
    index("invoice_lines_invoice_ix").on(t.invoiceId, t.position),
    check("invoice_lines_quantity_ck", sql`${t.quantity} >= 0`),
    check("invoice_lines_unit_ck", sql`${t.unitAmount} IS NULL OR (${t.unitAmount} >= 0 AND ${t.amount} = ${t.quantity} * ${t.unitAmount})`),
  ],
);

/**
 * Internal mapping of which patients a monthly invoice counts (its billable set, §5.3). It stays
 * inside the billing database and is never sent to Stripe or shown.
 *
 * Its one index is the primary key (invoice, patient). A patient's invoices are found through the
 * office's invoices, one primary-key lookup each (the patient trace, a key rotation): an office
 * has one monthly invoice a month, while every recorded activation writes a row here, and an
 * index by patient cost every bulk write a random insert more (docs/performance.md, "Bulk events").
 */
export const invoicePatients = sqliteTable(
  "invoice_patients",
  {
    invoiceId: text("invoice_id")
      .notNull()
      .references(() => invoices.id, { onDelete: "cascade" }),
    officeId: text("office_id").notNull(),
    patientKey: text("patient_key").notNull(),
    countedAt: epochMs("counted_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.invoiceId, t.patientKey] })],
);
