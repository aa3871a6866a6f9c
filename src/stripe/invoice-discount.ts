import type Stripe from "stripe";
import { couponPayload, discountLineDescription } from "./payloads";

/**
 * How an invoice's discount (docs/payment-plan.md §6.10) reaches Stripe.
 *
 * - `line`: one more `add_lines` line with its negative amount (no tax, or a manual tax rate).
 * - `coupon`: under Stripe Tax, where Stripe refuses negative lines ("incompatible invoice items
 *   (invoice items with manually specified tax rates, negative amounts, or
 *   `tax_behavior=unspecified`) cannot be added to automatic tax invoices": `automatic_tax.enabled`
 *   of the pinned SDK's InvoiceCreateParams, docs.stripe.com/api/invoices/create), the discount is an
 *   amount-off coupon made for this invoice alone and named in the invoice's `discounts`
 *   (docs.stripe.com/api/coupons/create: "If you set an `amount_off`, that amount will be
 *   subtracted from any invoice's subtotal"). Stripe Tax then taxes each line's amount less its
 *   share of the discount (the line's `discount_amounts`; `taxes[].taxable_amount`), and the
 *   invoice's `total_excluding_tax` — subtotal less discounts — is our total (§11.6 holds).
 */
export type DiscountMode = "line" | "coupon";

type Line = { description: string; amount: number };

/** Our discount line(s) of an invoice (the one template that may be negative). */
export const isDiscountLine = (l: Pick<Line, "description">) => discountLineDescription.test(l.description);

/** The discount of an invoice, a positive amount (0: none). */
export function discountOf(lines: Line[]): number {
  return -lines.filter(isDiscountLine).reduce((a, l) => a + l.amount, 0);
}

/**
 * The coupon's id: ours, fixed by the invoice (Stripe takes an `id` of our choice), so a create
 * repeated past Stripe's 24-hour key memory finds it (`resource_already_exists`) instead of making
 * a second one (docs.stripe.com/error-codes, `resource_already_exists`: "the ID specified to
 * create an object already exists"; a code of the pinned SDK's error enum); a coupon's amount and
 * currency cannot change once made (CouponUpdateParams: "Other coupon details (currency, duration,
 * amount_off) are, by design, not editable").
 */
export const couponIdOf = (invoiceId: string) => `discount_${invoiceId}`;

/** The create params of an invoice's coupon: its discount, once, one redemption, the line's fixed description as its name. */
export function couponParams(officeId: string, invoice: { id: string; currency: string; lines: Line[] }): Stripe.CouponCreateParams {
  const line = invoice.lines.find(isDiscountLine)!;
  return couponPayload.parse({
    id: couponIdOf(invoice.id),
    amount_off: discountOf(invoice.lines),
    currency: invoice.currency,
    duration: "once",
    max_redemptions: 1,
    name: line.description,
    metadata: { office_ref: officeId, invoice_ref: invoice.id },
  });
}
