import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { minimumCharge, minimumChargeCase, settleRun, settlement, stripeMinimumCharges } from "../../../src/billing/minimum";
import { stripeCurrencies } from "../../../src/billing/currencies";
import { modelSettle } from "../../harness/billing-model";

/** docs/payment-plan.md §8.9: invoices below Stripe's minimum charge are carried to the next, or written off. */
describe("Stripe's minimum charge (§8.9)", () => {
  it("has Stripe's table: usd 0.50, gbp 0.30, jpy 50, huf 175.00 (two-decimal in Stripe's API); none outside it", () => {
    expect([minimumCharge("usd"), minimumCharge("EUR"), minimumCharge("gbp"), minimumCharge("jpy"), minimumCharge("huf"), minimumCharge("mxn")]).toEqual([50, 50, 30, 50, 17_500, 1_000]);
    expect(minimumCharge("isk")).toBe(0);
    // Every currency of the table is one a plan may use.
    expect(Object.keys(stripeMinimumCharges).filter((c) => !(stripeCurrencies as readonly string[]).includes(c))).toEqual([]);
    expect(minimumChargeCase("pv.currency")).toContain("WHEN 'usd' THEN 50");
    expect(() => minimumChargeCase("x; DROP")).toThrow();
  });

  it("settles one invoice: zero, collect at the minimum, carry or write off below it", () => {
    expect(settlement(0, "usd", true)).toBe("zero");
    expect(settlement(50, "usd", false)).toBe("collect");
    expect(settlement(49, "usd", true)).toBe("carry");
    expect(settlement(49, "usd", false)).toBe("write_off");
    expect(settlement(1, "isk", false)).toBe("collect");
  });

  it("the worked example: 30 carried, then 30 + 30 = 60 collected", () => {
    expect(settleRun([30, 30], "usd", true)).toEqual([
      { total: 30, carriedIn: 0, settlement: "carry" },
      { total: 60, carriedIn: 30, settlement: "collect" },
    ]);
    expect(settleRun([30], "usd", false)).toEqual([{ total: 30, carriedIn: 0, settlement: "write_off" }]);
  });

  it("agrees with the model on any run, and nothing is lost: what is collected, carried on and written off is what was billed", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 10_000 })), { maxLength: 12 }), fc.boolean(), (amounts, hasNext) => {
        const ours = settleRun(amounts, "usd", hasNext);
        const model = modelSettle(amounts, 50, hasNext);
        expect(ours.map((o) => ({ carriedIn: o.carriedIn, total: o.total, carried: o.settlement === "carry" }))).toEqual(model.map((m) => ({ carriedIn: m.carriedIn, total: m.total, carried: m.carried })));
        expect(ours.map((o) => (o.settlement === "collect" ? "open" : o.settlement === "write_off" ? "void" : "paid"))).toEqual(model.map((m) => m.status));
        // Every invoice Stripe is sent is due at least the minimum; nothing below it is sent.
        for (const o of ours) if (o.settlement === "collect") expect(o.total).toBeGreaterThanOrEqual(50);
        for (const o of ours) if (o.settlement === "carry" || o.settlement === "write_off") expect(o.total > 0 && o.total < 50).toBe(true);
        const collected = ours.filter((o) => o.settlement === "collect").reduce((n, o) => n + o.total, 0);
        const writtenOff = ours.filter((o) => o.settlement === "write_off").reduce((n, o) => n + o.total, 0);
        const carriedOut = ours.at(-1)?.settlement === "carry" ? ours.at(-1)!.total : 0;
        expect(collected + writtenOff + carriedOut).toBe(amounts.reduce((n, a) => n + a, 0));
      }),
      { seed: 8_9, numRuns: 2_000 },
    );
  });
});
