import type Stripe from "stripe";
import { couponIdOf, discountOf, isDiscountLine, type DiscountMode } from "./invoice-discount";
import { invoiceTaxParams, type InvoiceTax } from "./invoice-tax";
import { addLinesPayload, creditNoteMemoText, creditNotePayload, invoicePayload, patientsProductName } from "./payloads";

/** How Stripe collects an invoice (docs/payment-plan.md §10): charged automatically, or sent by e-mail due in `daysUntilDue` days. */
export type Collection = { method: "charge_automatically" } | { method: "send_invoice"; daysUntilDue: number };

export type InvoiceForStripe = {
  id: string;
  currency: string;
  /** Default: charged automatically. */
  collection?: Collection;
  /** Default: no tax (docs/payment-plan.md §11). */
  tax?: InvoiceTax;
  /** How a discount line goes (invoice-discount.ts); default: as a line. */
  discount?: DiscountMode;
  periodStart: string;
  periodEnd: string;
  /** `unitAmount` set: a quantity × unit line (a patients tier), sent as such; else a fixed amount. */
  lines: { id: string; description: string; amount: number; quantity: number; unitAmount: number | null; periodStartAt?: number; periodEndAt?: number }[];
};

/**
 * The two requests of an invoice's push (docs/payment-plan.md §8.3), validated by their allowlist
 * schemas before anything is sent: the create (collection, tax, under Stripe Tax the discount's
 * coupon, §6.10) and every line in one `add_lines` (a discount line only when it goes as a line).
 */
export function invoiceRequests(officeId: string, customerId: string, invoice: InvoiceForStripe) {
  const asCoupon = invoice.discount === "coupon" && discountOf(invoice.lines) > 0;
  const created = invoicePayload.parse({
    customer: customerId,
    currency: invoice.currency,
    ...(invoice.collection?.method === "send_invoice" ? { collection_method: "send_invoice", days_until_due: invoice.collection.daysUntilDue } : { collection_method: "charge_automatically" }),
    auto_advance: false,
    pending_invoice_items_behavior: "exclude",
    metadata: { office_ref: officeId, invoice_ref: invoice.id, period_start: invoice.periodStart, period_end: invoice.periodEnd },
    ...invoiceTaxParams(invoice.tax),
    ...(asCoupon ? { discounts: [{ coupon: couponIdOf(invoice.id) }] } : {}),
  });
  const lines = addLinesPayload.parse({
    lines: invoice.lines
      .filter((l) => !(asCoupon && isDiscountLine(l)))
      .map((l) => ({
        ...(l.unitAmount !== null
          ? { quantity: l.quantity, price_data: { currency: invoice.currency, product_data: { name: patientsProductName }, unit_amount: l.unitAmount } }
          : { amount: l.amount }),
        description: l.description,
        ...(l.periodStartAt && l.periodEndAt ? { period: { start: Math.floor(l.periodStartAt / 1000), end: Math.floor(l.periodEndAt / 1000) } } : {}),
        metadata: { line_ref: l.id },
      })),
  });
  return { created, lines };
}

/** A credit note to create (§8.10). */
export type CreditNoteRequest = {
  creditNoteId: string;
  invoiceId: string;
  stripeInvoiceId: string;
  amount: number;
  /** By line: Stripe's line ids of the invoice (read back, gateway `invoiceLineIds`) and the amounts; `amount` is their sum. */
  lines?: { stripeLineId: string; amount: number }[];
  settlement: "none" | "refund" | "customer_balance";
  reason: Stripe.CreditNoteCreateParams.Reason;
  memo: string;
};

/** A credit note's create params: an amount, or Stripe's own invoice lines; a paid invoice's credit whole to a refund or the balance. */
export function creditNoteRequest(input: CreditNoteRequest): Stripe.CreditNoteCreateParams {
  return creditNotePayload.parse({
    invoice: input.stripeInvoiceId,
    ...(input.lines ? { lines: input.lines.map((l) => ({ type: "invoice_line_item", invoice_line_item: l.stripeLineId, amount: l.amount })) } : { amount: input.amount }),
    ...(input.settlement === "refund" ? { refund_amount: input.amount } : input.settlement === "customer_balance" ? { credit_amount: input.amount } : {}),
    reason: input.reason,
    memo: creditNoteMemoText.parse(input.memo),
    metadata: { invoice_ref: input.invoiceId, credit_note_ref: input.creditNoteId },
  });
}
