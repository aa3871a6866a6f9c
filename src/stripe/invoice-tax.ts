import type Stripe from "stripe";

/**
 * How an invoice is taxed on Stripe (docs/payment-plan.md §11): Stripe Tax (`automatic_tax`), or
 * the office's manual rate as a Stripe tax rate in `default_tax_rates`. Absent: no tax.
 */
export type InvoiceTax = { kind: "stripe_tax" } | { kind: "manual"; taxRateId: string };

/** The create params of an invoice's tax (§11.1, §11.3). */
export function invoiceTaxParams(tax: InvoiceTax | undefined): Pick<Stripe.InvoiceCreateParams, "automatic_tax" | "default_tax_rates"> {
  if (!tax) return {};
  return tax.kind === "stripe_tax" ? { automatic_tax: { enabled: true } } : { default_tax_rates: [tax.taxRateId] };
}

/** Basis points (825) as Stripe's percentage (8.25), exactly: at most two decimals. */
export function percentageOf(basisPoints: number): number {
  return Number(`${Math.trunc(basisPoints / 100)}.${String(basisPoints % 100).padStart(2, "0")}`);
}

/** What a Stripe invoice says of its tax (§11.6): the pre-tax total and the exclusive tax on it (null: no figure). */
export function stripeInvoiceTax(inv: Pick<Stripe.Invoice, "total_excluding_tax" | "total_taxes">): { totalExcludingTax: number | null; taxAmount: number | null } {
  const taxes = inv.total_taxes ?? [];
  // Only exclusive tax is ever configured (§11.2): an inclusive figure is outside what we read back.
  if (taxes.some((t) => t.tax_behavior !== "exclusive")) return { totalExcludingTax: inv.total_excluding_tax ?? null, taxAmount: null };
  return { totalExcludingTax: inv.total_excluding_tax ?? null, taxAmount: taxes.reduce((a, t) => a + t.amount, 0) };
}

/**
 * The tax figures stored on our invoice from Stripe's (§11.6), bounded: Stripe's pre-tax total must
 * be ours and its tax not negative, else nothing is stored (null) and the caller logs the difference.
 */
export function boundedTax(ourTotal: number, stripe: { totalExcludingTax: number | null; taxAmount: number | null }): { taxAmount: number; totalIncludingTax: number } | null {
  if (stripe.taxAmount === null || stripe.totalExcludingTax !== ourTotal || stripe.taxAmount < 0 || !Number.isSafeInteger(stripe.taxAmount)) return null;
  return { taxAmount: stripe.taxAmount, totalIncludingTax: ourTotal + stripe.taxAmount };
}

/** What an office owes on an invoice: its total including tax once read back, else its total (§11.6). */
export function payable(invoice: { total: number; totalIncludingTax: number | null }): number {
  return invoice.totalIncludingTax ?? invoice.total;
}
