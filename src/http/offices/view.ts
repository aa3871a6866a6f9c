import { z } from "@hono/zod-openapi";
import { officeStatuses, type offices } from "../../db/offices";
import { text } from "../text";
import { taxRateNames } from "../../stripe/payloads";
import type { OfficeDiscountRow } from "../../office/reads";

/**
 * ISO 3166-1 alpha-2 country codes the runtime knows (Intl's region names), without the codes
 * ISO leaves to private use (AA, QM–QZ, XA–XZ, ZZ: CLDR names some, e.g. "Unknown Region").
 */
const regionNames = new Intl.DisplayNames(["en"], { type: "region", fallback: "none" });
const USER_ASSIGNED = /^(?:AA|Q[M-Z]|X[A-Z]|ZZ)$/;
export const isCountryCode = (code: string) => /^[A-Z]{2}$/.test(code) && !USER_ASSIGNED.test(code) && regionNames.of(code) !== undefined;

export const BillingAddressSchema = z
  .object({
    line1: text({ max: 200 }).openapi({ example: "200 Lakeshore Drive" }),
    line2: text({ max: 200 }).nullable().default(null).openapi({ example: "Suite 4" }),
    city: text({ max: 100 }).openapi({ example: "Chicago" }),
    state: text({ max: 100 }).nullable().default(null).openapi({ example: "IL" }),
    postalCode: text({ max: 20 }).refine((v) => /^[A-Za-z0-9][A-Za-z0-9 -]{1,18}[A-Za-z0-9]$/.test(v), "must be a postal code (letters, digits, spaces, hyphens)").openapi({ example: "60601" }),
    country: z.string().refine(isCountryCode, "must be an ISO 3166-1 alpha-2 country code (upper case)").openapi({ example: "US" }),
  })
  .strict()
  .openapi("BillingAddress");

/** Tax id types kept for an office (a subset of Stripe's customer tax id types). */
export const taxIdTypes = ["us_ein", "eu_vat", "gb_vat", "ca_bn", "au_abn", "ch_vat", "no_vat", "nz_gst", "in_gst"] as const;

/** The office's tax (docs/payment-plan.md §11, platform_admin): Stripe Tax, or a manual exclusive rate. */
export const OfficeTaxSchema = z
  .discriminatedUnion("mode", [
    z.object({ mode: z.literal("stripe_tax") }).strict(),
    z
      .object({
        mode: z.literal("manual"),
        basisPoints: z.number().int().min(1).max(5_000).openapi({ description: "The rate in hundredths of a percent (825 = 8.25 %), exclusive: added on top of the invoice's total." }),
        name: z.enum(taxRateNames).openapi({ description: "The rate's name on Stripe's invoice." }),
      })
      .strict(),
  ])
  .openapi("OfficeTax", {
    description: "`stripe_tax`: Stripe Tax computes each invoice's tax from the office's address; `manual`: the rate given, as a Stripe tax rate. Offered per TAX_MODE (docs/payment-plan.md §11.1).",
    example: { mode: "manual", basisPoints: 825, name: "Sales tax" },
  });

export const TaxIdSchema = z
  .object({
    type: z.enum(taxIdTypes),
    value: text({ max: 40 }).refine((v) => /^[A-Za-z0-9][A-Za-z0-9 .\/-]{1,38}[A-Za-z0-9]$/.test(v), "must be letters and digits (with spaces, dots, slashes or hyphens between)").openapi({ example: "12-3456789" }),
  })
  .strict()
  .openapi("TaxId");

export const OfficeDiscountSchema = z
  .object({
    id: z.string(),
    couponCode: z.string().openapi({ example: "WELCOME15" }),
    percentOff: z.number().int().nullable(),
    amountOff: z.number().int().nullable(),
    currency: z.string().nullable(),
    duration: z.enum(["once", "repeating", "forever"]),
    durationCycles: z.number().int().nullable(),
    invoicesUsed: z.number().int().openapi({ description: "Monthly invoices discounted so far." }),
    appliedAt: z.string().datetime(),
  })
  .openapi("OfficeDiscount", { description: "The office's open discount (docs/payment-plan.md §6.10)." });

export function discountView(d: OfficeDiscountRow): z.infer<typeof OfficeDiscountSchema> {
  return {
    id: d.id,
    couponCode: d.code,
    percentOff: d.percentOff,
    amountOff: d.amountOff,
    currency: d.currency,
    duration: d.duration,
    durationCycles: d.durationCycles,
    invoicesUsed: d.invoicesUsed,
    appliedAt: new Date(d.createdAt).toISOString(),
  };
}

export const OfficeSchema = z
  .object({
    id: z.string().openapi({ example: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" }),
    legalName: z.string().openapi({ example: "Lakeside Family Practice LLC" }),
    billingEmail: z.string().email().openapi({ example: "billing@lakeside.example" }),
    timeZone: z.string().openapi({ example: "America/New_York" }),
    billingAnchorDay: z.number().int().min(1).max(31).openapi({ example: 1 }),
    status: z.enum(officeStatuses),
    planVersionId: z.string(),
    pendingPlanVersionId: z.string().nullable(),
    cancelAtPeriodEnd: z.boolean(),
    collection: z
      .object({ method: z.enum(["automatic", "send_invoice"]), daysUntilDue: z.number().int().nullable() })
      .openapi("OfficeCollection", { description: "`automatic`: invoices follow the payment method on file; `send_invoice`: always sent by e-mail, due in `daysUntilDue` days (docs/payment-plan.md §10.4)." }),
    billingAddress: BillingAddressSchema.nullable(),
    taxId: TaxIdSchema.nullable(),
    tax: OfficeTaxSchema.nullable().openapi({ description: "The office's tax (docs/payment-plan.md §11); null: none." }),
    pendingSettings: z
      .object({ timeZone: z.string(), billingAnchorDay: z.number().int().min(1).max(31) })
      .nullable()
      .openapi({ description: "A time zone / anchor day change that takes effect when the current cycle closes (docs/payment-plan.md §4.2)." }),
    currentCycle: z
      .object({ start: z.string().date(), end: z.string().date() })
      .nullable()
      .openapi({ description: "Local dates; end exclusive. Null once the office is canceled: it has no current cycle." }),
    paymentMethod: z
      .object({
        status: z.enum(["none", "on_file"]),
        brand: z.string().nullable(),
        last4: z.string().nullable(),
        expMonth: z.number().int().nullable(),
        expYear: z.number().int().nullable(),
      })
      .openapi("OfficePaymentMethod", {
        description:
          "The office's default payment method for invoices, as Stripe last reported it (docs/payment-plan.md §10). `none`: invoices are sent for payment by e-mail with a due date; `on_file`: they are charged automatically. Add one through `POST /v1/offices/{officeId}/payment-method/setup-session`.",
      }),
    discount: OfficeDiscountSchema.nullable().optional().openapi({ description: "On the office read: its open discount, or null." }),
    createdAt: z.string().datetime(),
  })
  .openapi("Office");

/** The office's tax setting as the API shows it. */
function officeTax(o: typeof offices.$inferSelect): z.infer<typeof OfficeTaxSchema> | null {
  if (o.taxMode === "stripe_tax") return { mode: "stripe_tax" };
  if (o.taxMode === "manual" && o.taxRateBps !== null) return { mode: "manual", basisPoints: o.taxRateBps, name: o.taxRateName as (typeof taxRateNames)[number] };
  return null;
}

export function officeView(o: typeof offices.$inferSelect): z.infer<typeof OfficeSchema> {
  return {
    id: o.id,
    legalName: o.legalName,
    billingEmail: o.billingEmail,
    timeZone: o.timeZone,
    billingAnchorDay: o.billingAnchorDay,
    status: o.status,
    planVersionId: o.planVersionId,
    pendingPlanVersionId: o.pendingPlanVersionId,
    cancelAtPeriodEnd: o.cancelAtPeriodEnd,
    collection: o.netTermsDays === null ? { method: "automatic", daysUntilDue: null } : { method: "send_invoice", daysUntilDue: o.netTermsDays },
    billingAddress: o.billingAddress ?? null,
    taxId: (o.taxId as z.infer<typeof TaxIdSchema> | null) ?? null,
    tax: officeTax(o),
    pendingSettings:
      o.pendingTimeZone !== null || o.pendingAnchorDay !== null ? { timeZone: o.pendingTimeZone ?? o.timeZone, billingAnchorDay: o.pendingAnchorDay ?? o.billingAnchorDay } : null,
    currentCycle: o.status === "canceled" ? null : { start: o.cycleStart, end: o.cycleEnd },
    paymentMethod: {
      status: o.paymentMethodStatus,
      brand: o.paymentMethodBrand,
      last4: o.paymentMethodLast4,
      expMonth: o.paymentMethodExpMonth,
      expYear: o.paymentMethodExpYear,
    },
    createdAt: new Date(o.createdAt).toISOString(),
  };
}
