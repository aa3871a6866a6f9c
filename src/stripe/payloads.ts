import type Stripe from "stripe";
import { z } from "zod";
import { chargeCategories, chargeDescriptions } from "../billing/charges";
import { creditNoteMemos, creditNoteReasons } from "../db/credit-notes";

/**
 * What may cross to Stripe, operation by operation: strict zod schemas of office-level fields
 * only (docs/compliance, the Stripe issue). Free text is limited to the office's legal name and
 * billing e-mail; line descriptions come from fixed templates; metadata keys from a fixed list
 * with opaque values (our own ids). Anything else fails the schema before a request is built.
 */
const opaqueRef = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[0-9a-f]{32}$`), `must be an opaque ${prefix}_ reference`);
const stripeId = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9]{6,64}$`), `must be a Stripe ${prefix}_ id`);
/** Our id of an invoice's discount coupon (invoice-discount.ts): `discount_` and the invoice's opaque reference. */
const couponId = z.string().regex(/^discount_inv_[0-9a-f]{32}$/, "must be our discount coupon id");
const periodLabel = String.raw`(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}`;

/** A patient rank as a tier line writes it: up to 999,999 with thousands separators. */
const rank = String.raw`[1-9]\d{0,2}(?:,\d{3})?`;

/**
 * A patients tier line's description ("Active patients 1,001–10,000 — Nov 2026", §6.1): its rank
 * slots hold a plan's tier bounds, its one group is the period label. The guard reads it by this
 * same template (guard.ts).
 */
export const tierLineDescription = new RegExp(`^Active patients ${rank}(?:–${rank}|\\+)? — (${periodLabel})$`);

/** A discount line's description (§6.10): the one line that may carry a negative amount. */
export const discountLineDescription = new RegExp(`^Discount — ${periodLabel}$`);

/** The fixed templates a line description may follow. */
export const lineDescriptionTemplates = [
  new RegExp(`^Active patients — ${periodLabel}$`),
  tierLineDescription,
  new RegExp(`^Platform fee — ${periodLabel}$`),
  discountLineDescription,
  new RegExp(`^Platform fee — ${periodLabel} \\(plan change\\)$`),
  /^Setup fee$/,
  new RegExp(`^Balance carried from ${periodLabel}$`),
  ...chargeCategories.map((c) => new RegExp(`^${chargeDescriptions[c]}$`)),
];

export const lineDescription = z.string().refine((d) => lineDescriptionTemplates.some((t) => t.test(d)), "must follow a fixed line template");

export const metadataKeys = ["office_ref", "invoice_ref", "line_ref", "period_start", "period_end", "refund_ref", "credit_note_ref"] as const;

const metadata = z
  .object({
    office_ref: opaqueRef("off").optional(),
    invoice_ref: opaqueRef("inv").optional(),
    line_ref: opaqueRef("il").optional(),
    refund_ref: opaqueRef("rf").optional(),
    credit_note_ref: opaqueRef("cn").optional(),
    period_start: z.string().date().optional(),
    period_end: z.string().date().optional(),
  })
  .strict();

/** The office's own billing address, as Stripe's customer address (office data, docs/payment-plan.md §4.2). */
const addressPayload = z
  .object({
    line1: z.string().min(1).max(200),
    line2: z.string().max(200).optional(),
    city: z.string().min(1).max(100),
    state: z.string().max(100).optional(),
    postal_code: z.string().min(1).max(20),
    country: z.string().regex(/^[A-Z]{2}$/),
  })
  .strict();

export const customerPayload = z
  .object({
    name: z.string().min(1).max(200),
    email: z.string().email(),
    address: addressPayload.optional(),
    metadata: metadata.extend({ office_ref: opaqueRef("off") }).strict(),
  })
  .strict() satisfies z.ZodType<Stripe.CustomerCreateParams>;

/** A profile change sent to the office's customer (§4.2): name, e-mail, and the address (`""` clears it). */
export const customerUpdatePayload = z
  .object({
    name: z.string().min(1).max(200),
    email: z.string().email(),
    address: z.union([addressPayload, z.literal("")]),
  })
  .strict() satisfies z.ZodType<Stripe.CustomerUpdateParams>;


const invoiceCommon = {
  customer: stripeId("cus"),
  currency: z.string().regex(/^[a-z]{3}$/),
  auto_advance: z.literal(false),
  pending_invoice_items_behavior: z.literal("exclude"),
  metadata: metadata.extend({ office_ref: opaqueRef("off"), invoice_ref: opaqueRef("inv") }).strict(),
  /** Tax (docs/payment-plan.md §11): Stripe Tax, or the office's one manual tax rate — never both. */
  automatic_tax: z.object({ enabled: z.literal(true) }).strict().optional(),
  default_tax_rates: z.tuple([stripeId("txr")]).optional(),
  /** Under Stripe Tax, the invoice's discount as its own amount-off coupon (invoice-discount.ts, §6.10). */
  discounts: z.tuple([z.object({ coupon: couponId }).strict()]).optional(),
};

/** An invoice charged automatically (a payment method on file) or sent for payment by e-mail with a due date (docs/payment-plan.md §10). */
export const invoicePayload = z
  .union([
    z.object({ ...invoiceCommon, collection_method: z.literal("charge_automatically") }).strict(),
    z.object({ ...invoiceCommon, collection_method: z.literal("send_invoice"), days_until_due: z.number().int().min(1).max(90) }).strict(),
  ])
  .refine((p) => !(p.automatic_tax && p.default_tax_rates), "Stripe Tax and a manual tax rate never go together")
  .refine((p) => !(p.discounts && p.default_tax_rates), "a discount coupon only under Stripe Tax (with a manual rate the discount is a line)") satisfies z.ZodType<Stripe.InvoiceCreateParams>;

/**
 * An invoice's discount under Stripe Tax (§6.10, invoice-discount.ts): an amount-off coupon of our
 * id for that invoice alone — once, one redemption, named by the discount line's fixed template.
 */
export const couponPayload = z
  .object({
    id: couponId,
    amount_off: z.number().int().min(1),
    currency: z.string().regex(/^[a-z]{3}$/),
    duration: z.literal("once"),
    max_redemptions: z.literal(1),
    name: z.string().regex(discountLineDescription),
    metadata: z.object({ office_ref: opaqueRef("off"), invoice_ref: opaqueRef("inv") }).strict(),
  })
  .strict() satisfies z.ZodType<Stripe.CouponCreateParams>;

/** The display names a manual tax rate may carry (§11.3): fixed, no free text. */
export const taxRateNames = ["Sales tax", "VAT", "GST"] as const;

/**
 * A manual tax rate (§11.3): exclusive only, a percentage with up to two decimals from the office's
 * basis points (1–5,000), a fixed display name, our office reference.
 */
export const taxRatePayload = z
  .object({
    display_name: z.enum(taxRateNames),
    percentage: z.number().min(0.01).max(50).refine((p) => Number.isInteger(Math.round(p * 100)) && Math.abs(p * 100 - Math.round(p * 100)) < 1e-9, "at most two decimals"),
    inclusive: z.literal(false),
    metadata: z.object({ office_ref: opaqueRef("off") }).strict(),
  })
  .strict() satisfies z.ZodType<Stripe.TaxRateCreateParams>;

/** A Stripe Checkout Session in setup mode: the office's customer adds a payment method on Stripe's hosted page. */
export const checkoutSetupPayload = z
  .object({
    mode: z.literal("setup"),
    customer: stripeId("cus"),
    currency: z.string().regex(/^[a-z]{3}$/),
    success_url: z.string().url(),
    cancel_url: z.string().url(),
    metadata: z.object({ office_ref: opaqueRef("off") }).strict(),
  })
  .strict() satisfies z.ZodType<Stripe.Checkout.SessionCreateParams>;

/** The customer's default payment method for invoices (the one a setup session collected). */
export const defaultPaymentMethodPayload = z
  .object({
    invoice_settings: z.object({ default_payment_method: stripeId("pm") }).strict(),
    expand: z.tuple([z.literal("invoice_settings.default_payment_method")]),
  })
  .strict() satisfies z.ZodType<Stripe.CustomerUpdateParams>;

/** The one product name a quantity × unit line's inline price may carry (no free text). */
export const patientsProductName = "Active patients";

const lineCommon = {
  description: lineDescription,
  period: z.object({ start: z.number().int(), end: z.number().int() }).strict().optional(),
  metadata: metadata.extend({ line_ref: opaqueRef("il") }).strict(),
};

/**
 * Lines of `POST /v1/invoices/{id}/add_lines`: a fixed amount, or (a patients tier) a quantity
 * at a unit price through an inline price — Stripe then shows quantity × unit price and computes
 * the amount itself. One or the other, never both (Stripe refuses `amount` with `price_data`).
 */
export const addLinesPayload = z
  .object({
    lines: z
      .array(
        z.union([
          z
            .object({ amount: z.number().int(), ...lineCommon })
            .strict()
            .refine((l) => l.amount >= 0 || discountLineDescription.test(l.description), "only a discount line may have a negative amount"),
          z
            .object({
              quantity: z.number().int().min(1).max(999_999),
              price_data: z
                .object({
                  currency: z.string().regex(/^[a-z]{3}$/),
                  product_data: z.object({ name: z.literal(patientsProductName) }).strict(),
                  unit_amount: z.number().int().min(0),
                })
                .strict(),
              ...lineCommon,
            })
            .strict(),
        ]),
      )
      .min(1)
      .max(250),
  })
  .strict() satisfies z.ZodType<Stripe.InvoiceAddLinesParams>;

export const refundPayload = z
  .object({
    payment_intent: stripeId("pi"),
    amount: z.number().int().min(1).optional(),
    reason: z.enum(["duplicate", "requested_by_customer"]).optional(),
    metadata: metadata.extend({ invoice_ref: opaqueRef("inv"), refund_ref: opaqueRef("rf") }).strict(),
  })
  .strict() satisfies z.ZodType<Stripe.RefundCreateParams>;

/** A credit note's memo: one of the fixed templates (docs/payment-plan.md §8.10), never free text. */
export const creditNoteMemoText = z.enum(Object.values(creditNoteMemos) as [string, ...string[]]);

/**
 * A credit note of a finalized invoice (§8.10): its total as `amount`, or — a credit note by line
 * of an untaxed invoice — `lines`, each Stripe's own line of the invoice (`type:
 * invoice_line_item`, its `il_` id read back from Stripe's invoice, an amount), never a
 * `custom_line_item` (it would carry a free-text description); on a paid invoice the whole of it
 * as `refund_amount` or `credit_amount` (never `out_of_band_amount`); Stripe's reason; a fixed
 * memo; our references.
 */
export const creditNotePayload = z
  .object({
    invoice: stripeId("in"),
    amount: z.number().int().min(1).optional(),
    lines: z
      .array(z.object({ type: z.literal("invoice_line_item"), invoice_line_item: stripeId("il"), amount: z.number().int().min(1) }).strict())
      .min(1)
      .max(250)
      .optional(),
    refund_amount: z.number().int().min(1).optional(),
    credit_amount: z.number().int().min(1).optional(),
    reason: z.enum(creditNoteReasons),
    memo: creditNoteMemoText,
    metadata: metadata.extend({ invoice_ref: opaqueRef("inv"), credit_note_ref: opaqueRef("cn") }).strict(),
  })
  .strict()
  .refine((p) => (p.amount === undefined) !== (p.lines === undefined), "an amount or lines, not both")
  .refine((p) => p.refund_amount === undefined || p.credit_amount === undefined, "a refund or a balance credit, not both")
  .refine((p) => (p.refund_amount ?? p.credit_amount ?? creditNoteTotal(p)) === creditNoteTotal(p), "a paid invoice's credit goes whole to the refund or the balance") satisfies z.ZodType<Stripe.CreditNoteCreateParams>;

/** A credit note's total: its amount, or the sum of its lines. */
export function creditNoteTotal(p: { amount?: number; lines?: { amount: number }[] }): number {
  return p.amount ?? (p.lines ?? []).reduce((a, l) => a + l.amount, 0);
}

export const portalPayload = z
  .object({
    customer: stripeId("cus"),
    return_url: z.string().url(),
  })
  .strict() satisfies z.ZodType<Stripe.BillingPortal.SessionCreateParams>;

/** Form keys each operation may send (as Stripe's bracket notation), text and numeric. */
export const fieldRules = {
  customer: { text: [/^name$/, /^email$/, /^address\[(line1|line2|city|state|postal_code|country)\]$/, /^metadata\[(office_ref)\]$/], numeric: [] as RegExp[] },
  customerUpdate: { text: [/^name$/, /^email$/, /^address$/, /^address\[(line1|line2|city|state|postal_code|country)\]$/], numeric: [] as RegExp[] },
  invoice: {
    text: [/^customer$/, /^currency$/, /^collection_method$/, /^auto_advance$/, /^pending_invoice_items_behavior$/, /^metadata\[(office_ref|invoice_ref|period_start|period_end)\]$/, /^automatic_tax\[enabled\]$/, /^default_tax_rates\[0\]$/, /^discounts\[0\]\[coupon\]$/],
    numeric: [/^days_until_due$/] as RegExp[],
  },
  addLines: {
    text: [/^lines\[\d+\]\[description\]$/, /^lines\[\d+\]\[metadata\]\[line_ref\]$/, /^lines\[\d+\]\[price_data\]\[(currency|product_data\]\[name)\]$/],
    numeric: [/^lines\[\d+\]\[(amount|quantity)\]$/, /^lines\[\d+\]\[price_data\]\[unit_amount\]$/, /^lines\[\d+\]\[period\]\[(start|end)\]$/],
  },
  finalize: { text: [/^auto_advance$/], numeric: [] as RegExp[] },
  coupon: { text: [/^id$/, /^currency$/, /^duration$/, /^name$/, /^metadata\[(office_ref|invoice_ref)\]$/], numeric: [/^(amount_off|max_redemptions)$/] },
  /** `percentage` is a decimal ("8.25"): a text field, scanned as every text field is. */
  taxRate: { text: [/^display_name$/, /^inclusive$/, /^percentage$/, /^metadata\[office_ref\]$/], numeric: [] as RegExp[] },
  void: { text: [] as RegExp[], numeric: [] as RegExp[] },
  refund: { text: [/^payment_intent$/, /^reason$/, /^metadata\[(invoice_ref|refund_ref)\]$/], numeric: [/^amount$/] },
  creditNote: {
    text: [/^invoice$/, /^reason$/, /^memo$/, /^metadata\[(invoice_ref|credit_note_ref)\]$/, /^lines\[\d+\]\[(type|invoice_line_item)\]$/],
    numeric: [/^(amount|refund_amount|credit_amount)$/, /^lines\[\d+\]\[amount\]$/],
  },
  readCreditNote: { text: [] as RegExp[], numeric: [] as RegExp[] },
  readInvoice: { text: [] as RegExp[], numeric: [] as RegExp[] },
  readCharge: { text: [] as RegExp[], numeric: [] as RegExp[] },
  readRefund: { text: [] as RegExp[], numeric: [] as RegExp[] },
  /** Look-ups before a late re-create (gateway.ts): GET requests, their query scanned as text. */
  findCustomer: { text: [] as RegExp[], numeric: [] as RegExp[] },
  findInvoice: { text: [] as RegExp[], numeric: [] as RegExp[] },
  portal: { text: [/^customer$/, /^return_url$/], numeric: [] as RegExp[] },
  checkoutSetup: { text: [/^mode$/, /^customer$/, /^currency$/, /^success_url$/, /^cancel_url$/, /^metadata\[office_ref\]$/], numeric: [] as RegExp[] },
  defaultPaymentMethod: { text: [/^invoice_settings\[default_payment_method\]$/, /^expand\[0\]$/], numeric: [] as RegExp[] },
  readSetupIntent: { text: [] as RegExp[], numeric: [] as RegExp[] },
  readCustomer: { text: [/^expand\[0\]$/], numeric: [] as RegExp[] },
} as const;

export type StripeOperation = keyof typeof fieldRules;
