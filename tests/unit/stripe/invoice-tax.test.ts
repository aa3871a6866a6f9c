// The tax read-back's arithmetic (docs/payment-plan.md §11.3, §11.6): basis points as Stripe's
// percentage, and Stripe's figures taken only within bounds.
import { describe, expect, it } from "vitest";
import { boundedTax, payable, percentageOf, stripeInvoiceTax } from "../../../src/stripe/invoice-tax";

describe("invoice tax", () => {
  it("basis points are Stripe's percentage exactly", () => {
    expect([1, 10, 825, 1_000, 2_000, 5_000].map(percentageOf)).toEqual([0.01, 0.1, 8.25, 10, 20, 50]);
  });

  it("reads exclusive tax back; anything that changes our pre-tax total or is negative is not stored", () => {
    const taxes = (amounts: number[], behavior: "exclusive" | "inclusive" = "exclusive") =>
      amounts.map((amount) => ({ amount, tax_behavior: behavior, tax_rate_details: null, taxability_reason: "standard_rated" as const, taxable_amount: null, type: "tax_rate_details" as const }));
    expect(stripeInvoiceTax({ total_excluding_tax: 34_900, total_taxes: taxes([2_879]) })).toEqual({ totalExcludingTax: 34_900, taxAmount: 2_879 });
    expect(stripeInvoiceTax({ total_excluding_tax: 34_900, total_taxes: taxes([2_000], "inclusive") }).taxAmount).toBeNull();
    expect(boundedTax(34_900, { totalExcludingTax: 34_900, taxAmount: 2_879 })).toEqual({ taxAmount: 2_879, totalIncludingTax: 37_779 });
    expect(boundedTax(34_900, { totalExcludingTax: 34_901, taxAmount: 2_879 })).toBeNull();
    expect(boundedTax(34_900, { totalExcludingTax: 34_900, taxAmount: -1 })).toBeNull();
    expect(boundedTax(34_900, { totalExcludingTax: 34_900, taxAmount: null })).toBeNull();
    expect(payable({ total: 34_900, totalIncludingTax: 37_779 })).toBe(37_779);
    expect(payable({ total: 34_900, totalIncludingTax: null })).toBe(34_900);
  });
});
