import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { discountAmount, discountsFor, type CouponTerms } from "../../../src/billing/discounts";

const percent = (p: number, duration: CouponTerms["duration"] = "forever", durationCycles: number | null = null): CouponTerms => ({ percentOff: p, amountOff: null, duration, durationCycles });
const amount = (a: number, duration: CouponTerms["duration"] = "forever", durationCycles: number | null = null): CouponTerms => ({ percentOff: null, amountOff: a, duration, durationCycles });

describe("discounts (payment-plan §6.10): the worked examples", () => {
  it("percentages round half up on the subtotal; amounts stop at the subtotal", () => {
    expect(discountAmount(percent(10), 59_100)).toBe(-5_910);
    expect(discountAmount(percent(15), 59_100)).toBe(-8_865);
    expect(discountAmount(percent(33), 4_268)).toBe(-1_408);
    expect(discountAmount(amount(10_000), 59_100)).toBe(-10_000);
    expect(discountAmount(amount(10_000), 4_900)).toBe(-4_900);
    expect(discountAmount(percent(100), 4_900)).toBe(-4_900);
    // Half up: 5 % of 10 = 0.5 → 1; of 9 = 0.45 → 0 (no line).
    expect(discountAmount(percent(5), 10)).toBe(-1);
    expect(discountAmount(percent(5), 9)).toBe(0);
    expect(discountAmount(percent(50), 0)).toBe(0);
  });

  it("once, repeating and forever use invoices that charge; a zero subtotal waits", () => {
    const open = (coupon: CouponTerms, invoicesUsed = 0) => ({ id: "dsc_1", coupon, invoicesUsed });
    expect(discountsFor(open(percent(15, "once")), [59_100, 59_100])).toEqual({ amounts: [-8_865, 0], used: 1, ended: true });
    expect(discountsFor(open(percent(15, "once")), [0, 4_900])).toEqual({ amounts: [0, -735], used: 1, ended: true });
    expect(discountsFor(open(amount(10_000, "repeating", 3), 1), [59_100, 59_100, 59_100])).toEqual({ amounts: [-10_000, -10_000, 0], used: 2, ended: true });
    expect(discountsFor(open(percent(10)), [1_000, 0, 2_000])).toEqual({ amounts: [-100, 0, -200], used: 2, ended: false });
    expect(discountsFor(null, [1_000])).toEqual({ amounts: [0], used: 0, ended: false });
  });

  it("never takes a total below 0, never discounts more invoices than the coupon has (property)", () => {
    const coupon = fc.oneof(
      fc.record({ percentOff: fc.integer({ min: 1, max: 100 }), amountOff: fc.constant(null) }),
      fc.record({ percentOff: fc.constant(null), amountOff: fc.integer({ min: 1, max: 10_000_000 }) }),
    );
    const duration = fc.oneof(
      fc.record({ duration: fc.constant("once" as const), durationCycles: fc.constant(null) }),
      fc.record({ duration: fc.constant("repeating" as const), durationCycles: fc.integer({ min: 1, max: 36 }) }),
      fc.record({ duration: fc.constant("forever" as const), durationCycles: fc.constant(null) }),
    );
    fc.assert(
      fc.property(coupon, duration, fc.integer({ min: 0, max: 40 }), fc.array(fc.integer({ min: 0, max: 50_000_000 }), { maxLength: 40 }), (value, d, usedBefore, subtotals) => {
        const terms = { ...value, ...d };
        const allowed = d.duration === "once" ? 1 : d.duration === "repeating" ? d.durationCycles! : Infinity;
        const out = discountsFor({ id: "dsc_1", coupon: terms, invoicesUsed: Math.min(usedBefore, allowed === Infinity ? usedBefore : allowed) }, subtotals);
        out.amounts.forEach((a, i) => {
          expect(a).toBeLessThanOrEqual(0);
          expect(subtotals[i]! + a).toBeGreaterThanOrEqual(0);
          if (subtotals[i] === 0) expect(a).toBe(0);
        });
        expect(out.amounts.filter((a) => a < 0).length).toBe(out.used);
        if (allowed !== Infinity) expect(Math.min(usedBefore, allowed) + out.used).toBeLessThanOrEqual(allowed);
      }),
      { seed: 6_10, numRuns: 2000 },
    );
  });
});
