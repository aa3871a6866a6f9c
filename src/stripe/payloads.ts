import { z } from "zod";
import { chargeCategories, chargeDescriptions } from "../billing/charges";

/**
 * What may cross to Stripe, operation by operation: strict zod schemas of office-level fields
 * only (docs/compliance, the Stripe issue). Free text is limited to the office's legal name and
 * billing e-mail; line descriptions come from fixed templates; metadata keys from a fixed list
 * with opaque values (our own ids). Anything else fails the schema before a request is built.
 */
const opaqueRef = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[0-9a-f]{32}$`), `must be an opaque ${prefix}_ reference`);
const stripeId = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9]{6,64}$`), `must be a Stripe ${prefix}_ id`);
const periodLabel = String.raw`(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}`;

/** The fixed templates a line description may follow. */
export const lineDescriptionTemplates = [
  new RegExp(`^Active patients — ${periodLabel}$`),
  new RegExp(`^Platform fee — ${periodLabel}$`),
  new RegExp(`^Platform fee — ${periodLabel} \\(plan change\\)$`),
  /^Setup fee$/,
  ...chargeCategories.map((c) => new RegExp(`^${chargeDescriptions[c]}$`)),
];

export const lineDescription = z.string().refine((d) => lineDescriptionTemplates.some((t) => t.test(d)), "must follow a fixed line template");

export const metadataKeys = ["office_ref", "invoice_ref", "line_ref", "period_start", "period_end", "refund_ref"] as const;

const metadata = z
  .object({
    office_ref: opaqueRef("off").optional(),
    invoice_ref: opaqueRef("inv").optional(),
    line_ref: opaqueRef("il").optional(),
    refund_ref: opaqueRef("rf").optional(),
    period_start: z.string().date().optional(),
    period_end: z.string().date().optional(),
  })
  .strict();

export const customerPayload = z
  .object({
    name: z.string().min(1).max(200),
    email: z.string().email(),
    metadata: metadata.extend({ office_ref: opaqueRef("off") }).strict(),
  })
  .strict();

export const invoicePayload = z
  .object({
    customer: stripeId("cus"),
    currency: z.string().regex(/^[a-z]{3}$/),
    collection_method: z.literal("charge_automatically"),
    auto_advance: z.literal(false),
    pending_invoice_items_behavior: z.literal("exclude"),
    metadata: metadata.extend({ office_ref: opaqueRef("off"), invoice_ref: opaqueRef("inv") }).strict(),
  })
  .strict();

export const addLinesPayload = z
  .object({
    lines: z
      .array(
        z
          .object({
            amount: z.number().int().min(0),
            description: lineDescription,
            period: z.object({ start: z.number().int(), end: z.number().int() }).strict().optional(),
            metadata: metadata.extend({ line_ref: opaqueRef("il") }).strict(),
          })
          .strict(),
      )
      .min(1)
      .max(250),
  })
  .strict();

export const refundPayload = z
  .object({
    payment_intent: stripeId("pi"),
    amount: z.number().int().min(1).optional(),
    reason: z.enum(["duplicate", "requested_by_customer"]).optional(),
    metadata: metadata.extend({ invoice_ref: opaqueRef("inv"), refund_ref: opaqueRef("rf") }).strict(),
  })
  .strict();

export const portalPayload = z
  .object({
    customer: stripeId("cus"),
    return_url: z.string().url(),
  })
  .strict();

/** Form keys each operation may send (as Stripe's bracket notation), text and numeric. */
export const fieldRules = {
  customer: { text: [/^name$/, /^email$/, /^metadata\[(office_ref)\]$/], numeric: [] as RegExp[] },
  invoice: {
    text: [/^customer$/, /^currency$/, /^collection_method$/, /^auto_advance$/, /^pending_invoice_items_behavior$/, /^metadata\[(office_ref|invoice_ref|period_start|period_end)\]$/],
    numeric: [] as RegExp[],
  },
  addLines: {
    text: [/^lines\[\d+\]\[description\]$/, /^lines\[\d+\]\[metadata\]\[line_ref\]$/],
    numeric: [/^lines\[\d+\]\[amount\]$/, /^lines\[\d+\]\[period\]\[(start|end)\]$/],
  },
  finalize: { text: [/^auto_advance$/], numeric: [] as RegExp[] },
  void: { text: [] as RegExp[], numeric: [] as RegExp[] },
  refund: { text: [/^payment_intent$/, /^reason$/, /^metadata\[(invoice_ref|refund_ref)\]$/], numeric: [/^amount$/] },
  readInvoice: { text: [] as RegExp[], numeric: [] as RegExp[] },
  readCharge: { text: [] as RegExp[], numeric: [] as RegExp[] },
  portal: { text: [/^customer$/, /^return_url$/], numeric: [] as RegExp[] },
} as const;

export type StripeOperation = keyof typeof fieldRules;
