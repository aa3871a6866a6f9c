import { describe, expect, it } from "vitest";
import { prorate, tieredAmount } from "../../../src/billing/pricing";

const tiers = [
  { upTo: 50, unitAmount: 800 },
  { upTo: 200, unitAmount: 600 },
  { upTo: null, unitAmount: 400 },
];

describe("graduated tiers (docs/payment-plan.md, Money)", () => {
  it.each([
    [0, 0],
    [1, 800],
    [50, 40_000],
    [51, 40_600],
    [200, 130_000],
    [201, 130_400],
    [1000, 450_000],
  ])("%i patients cost %i", (patients, amount) => {
    expect(tieredAmount(patients, tiers).amount).toBe(amount);
  });

  it("gives the included patients free, from the first rank", () => {
    expect(tieredAmount(10, tiers, 10).amount).toBe(0);
    expect(tieredAmount(60, tiers, 10).amount).toBe(40 * 800 + 10 * 600);
    expect(tieredAmount(60, tiers, 55).amount).toBe(5 * 600);
  });

  it("breaks the amount down per tier", () => {
    expect(tieredAmount(51, tiers).tiers).toEqual([
      { from: 1, to: 50, quantity: 50, unitAmount: 800, amount: 40_000 },
      { from: 51, to: 200, quantity: 1, unitAmount: 600, amount: 600 },
    ]);
  });

  it("refuses malformed tiers", () => {
    expect(() => tieredAmount(1, [])).toThrow();
    expect(() => tieredAmount(1, [{ upTo: 10, unitAmount: 1 }])).toThrow(/unbounded/);
    expect(() => tieredAmount(1, [{ upTo: 10, unitAmount: 1 }, { upTo: 5, unitAmount: 1 }, { upTo: null, unitAmount: 1 }])).toThrow();
    expect(() => tieredAmount(1, [{ upTo: null, unitAmount: 1.5 }])).toThrow();
  });
});

describe("proration rounds half up to a whole minor unit", () => {
  it.each([
    [4900, 15, 30, 2450],
    [4900, 10, 31, 1581], // 1580.645… → 1581
    [100, 1, 8, 13], // 12.5 → 13 (half up)
    [100, 3, 8, 38], // 37.5 → 38
    [4900, 0, 30, 0],
    [4900, 30, 30, 4900],
    [4900, 31, 30, 4900],
  ])("%i × %i/%i = %i", (amount, n, d, expected) => {
    expect(prorate(amount, n, d)).toBe(expected);
  });

  it("stays exact for large amounts", () => {
    expect(prorate(9_007_199_254_740, 1, 3)).toBe(3_002_399_751_580);
  });
});
