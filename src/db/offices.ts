import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt, epochMs } from "./columns";
import { planVersions } from "./plans";

export type BillingAddress = { line1: string; line2: string | null; city: string; state: string | null; postalCode: string; country: string };
export type OfficeTaxId = { type: string; value: string };

export const officeStatuses = ["trialing", "active", "past_due", "suspended", "canceled"] as const;
export const paymentMethodStatuses = ["none", "on_file"] as const;
export type OfficeStatus = (typeof officeStatuses)[number];

/** A customer of the SaaS: a medical office, billed per active patient. */
export const offices = sqliteTable(
  "offices",
  {
    id: text("id").primaryKey(),
    legalName: text("legal_name").notNull(),
    billingEmail: text("billing_email").notNull(),
    /** IANA time zone; cycle boundaries are local midnights in this zone. */
    timeZone: text("time_zone").notNull(),
    /** 1–31; in a shorter month the cycle starts on that month's last day. */
    billingAnchorDay: integer("billing_anchor_day").notNull(),
    planVersionId: text("plan_version_id")
      .notNull()
      .references(() => planVersions.id),
    /** Plan version that takes effect when the current cycle closes (a `next_cycle` plan change). */
    pendingPlanVersionId: text("pending_plan_version_id").references(() => planVersions.id),
    status: text("status", { enum: officeStatuses }).notNull(),
    trialEndsAt: epochMs("trial_ends_at"),
    cancelAtPeriodEnd: integer("cancel_at_period_end", { mode: "boolean" }).notNull().default(false),
    canceledAt: epochMs("canceled_at"),
    pastDueSince: epochMs("past_due_since"),
    /** The office's first billed local day (onboarding); base fees are prorated from it. */
    billingStart: text("billing_start").notNull().default("1970-01-01"),
    /** Current cycle as local dates `YYYY-MM-DD`, end exclusive. */
    cycleStart: text("cycle_start").notNull(),
    cycleEnd: text("cycle_end").notNull(),
    /** The current cycle's end as an instant (local midnight in `timeZone`): when it is due to close. */
    cycleEndAt: epochMs("cycle_end_at").notNull().default(0),
    /**
     * Stripe customer id, encrypted at rest (AES-256-GCM, `<keyId>.<iv>.<ciphertext>`), and its
     * keyed HMAC for lookups; the plaintext id is never stored.
     */
    stripeCustomerRef: text("stripe_customer_ref"),
    stripeCustomerIndex: text("stripe_customer_index"),
    /**
     * Version of the patient pseudonyms stored for this office (src/security/crypto.ts
     * advancePatientKey): every patient_key of its patients, patient_events and invoice_patients
     * rows is under it. Only its Durable Object changes it, with the rows, in one transaction.
     */
    patientKeyVersion: integer("patient_key_version").notNull().default(1),
    /**
     * The office's payment method as Stripe last reported it (docs/payment-plan.md §10): `none`, or
     * `on_file` with the card's brand, last 4 digits and expiry (office payment data, not PHI).
     */
    paymentMethodStatus: text("payment_method_status", { enum: paymentMethodStatuses }).notNull().default("none"),
    paymentMethodBrand: text("payment_method_brand"),
    paymentMethodLast4: text("payment_method_last4"),
    paymentMethodExpMonth: integer("payment_method_exp_month"),
    paymentMethodExpYear: integer("payment_method_exp_year"),
    /**
     * Collection terms agreed with the office (docs/payment-plan.md §10.4): null, invoices follow the
     * payment method on file; N, every invoice is sent for payment by e-mail, due N days after it is
     * finalized, whatever is on file. Set by platform_admin only.
     */
    netTermsDays: integer("net_terms_days"),
    /** The office's billing address (office data; sent to its Stripe customer). */
    billingAddress: text("billing_address", { mode: "json" }).$type<BillingAddress>(),
    /** The office's tax id (office data; kept and shown here, not sent to Stripe: docs/payment-plan.md §4.2). */
    taxId: text("tax_id", { mode: "json" }).$type<OfficeTaxId>(),
    /**
     * The office's tax (docs/payment-plan.md §11, platform_admin): null, none; `stripe_tax`; or
     * `manual` with its rate in basis points and display name. `stripeTaxRateId` is the Stripe tax
     * rate made for `stripeTaxRateKey` (`<basisPoints>_<name>`), reused while the rate stays.
     */
    taxMode: text("tax_mode", { enum: ["stripe_tax", "manual"] }),
    taxRateBps: integer("tax_rate_bps"),
    taxRateName: text("tax_rate_name"),
    stripeTaxRateId: text("stripe_tax_rate_id"),
    stripeTaxRateKey: text("stripe_tax_rate_key"),
    /** A time zone / anchor day change that takes effect when the current cycle closes (§4.2). */
    pendingTimeZone: text("pending_time_zone"),
    pendingAnchorDay: integer("pending_anchor_day"),
    /**
     * The version of the office's profile (legal name, billing e-mail, address), raised by each
     * change; `stripeProfileVersion` is the version its Stripe customer carries. The outbox sends
     * the profile while the two differ, keyed by the version (exactly once).
     */
    profileVersion: integer("profile_version").notNull().default(1),
    stripeProfileVersion: integer("stripe_profile_version").notNull().default(1),
    createdAt: createdAt(),
    updatedAt: epochMs("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("offices_stripe_customer_uq").on(t.stripeCustomerIndex),
    check("offices_anchor_ck", sql`${t.billingAnchorDay} BETWEEN 1 AND 31`),
    check("offices_status_ck", sql`${t.status} IN ('trialing','active','past_due','suspended','canceled')`),
    check("offices_cycle_ck", sql`${t.cycleStart} < ${t.cycleEnd}`),
    index("offices_due_ix").on(t.cycleEndAt),
    // The office list (GET /v1/offices): newest first, and by legal name (prefix search, sort).
    index("offices_created_ix").on(t.createdAt, t.id),
    index("offices_legal_name_ix").on(sql`${t.legalName} COLLATE NOCASE`, t.id),
  ],
);
