import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cycleContaining } from "../../../src/billing/calendar";
import { feeLineStart, formatRank, lineDescriptions, patientTierLines } from "../../../src/billing/invoice";
import { tieredAmount } from "../../../src/billing/pricing";
import type { PriceTier } from "../../../src/db/plans";
import { lineDescription } from "../../../src/stripe/payloads";

/** Invoices that explain themselves (docs/payment-plan.md §6.1): tier lines and fee periods. */
const tiers: PriceTier[] = [
  { upTo: 50, unitAmount: 800 },
  { upTo: 200, unitAmount: 600 },
  { upTo: null, unitAmount: 400 },
];

describe("patients tier lines", () => {
  it("the worked example of §6.1: 87 patients, 10 included", () => {
    const { tiers: charges } = tieredAmount(87, tiers, 10);
    expect(patientTierLines("2026-11-01", charges, 10)).toEqual([
      { description: "Active patients 11–50 — Nov 2026", quantity: 40, unitAmount: 800, amount: 32_000, rankFrom: 11, rankTo: 50 },
      { description: "Active patients 51–200 — Nov 2026", quantity: 37, unitAmount: 600, amount: 22_200, rankFrom: 51, rankTo: 200 },
    ]);
  });

  it("no line for patients all within the allowance, a free tier, or no patient; the last tier reads N+", () => {
    expect(patientTierLines("2026-11-01", tieredAmount(8, tiers, 10).tiers, 10)).toEqual([]);
    expect(patientTierLines("2026-11-01", tieredAmount(0, tiers, 0).tiers, 0)).toEqual([]);
    const free: PriceTier[] = [{ upTo: 5, unitAmount: 0 }, { upTo: null, unitAmount: 500 }];
    expect(patientTierLines("2026-02-01", tieredAmount(7, free, 0).tiers, 0)).toEqual([
      { description: "Active patients 6+ — Feb 2026", quantity: 2, unitAmount: 500, amount: 1000, rankFrom: 6, rankTo: null },
    ]);
  });

  it("ranks carry thousands separators, and every description passes Stripe's line templates", () => {
    expect(formatRank(1_000)).toBe("1,000");
    expect(formatRank(10_001)).toBe("10,001");
    expect(lineDescriptions.patientTier("2026-11-01", 1_001, 10_000)).toBe("Active patients 1,001–10,000 — Nov 2026");
    expect(lineDescriptions.patientTier("2026-11-01", 2, 2)).toBe("Active patients 2 — Nov 2026");
    for (const d of ["Active patients 1,001–10,000 — Nov 2026", "Active patients 201+ — Jan 2027", "Active patients 2 — Feb 2028"]) {
      expect(lineDescription.safeParse(d).success, d).toBe(true);
    }
    for (const d of ["Active patients 01–5 — Nov 2026", "Active patients 1234567+ — Nov 2026", "Active patients 5–Jane — Nov 2026"]) {
      expect(lineDescription.safeParse(d).success, d).toBe(false);
    }
  });

  it("for any tiers, allowance and count: lines add up to the tiered amount, charge every patient beyond the allowance in a priced tier, and none is zero", () => {
    const tiersArb = fc
      .array(fc.record({ width: fc.integer({ min: 1, max: 60 }), unitAmount: fc.integer({ min: 0, max: 2_000 }) }), { minLength: 1, maxLength: 5 })
      .map((ts) => {
        let upTo = 0;
        return ts.map((t, i) => ({ upTo: i === ts.length - 1 ? null : (upTo += t.width), unitAmount: t.unitAmount }));
      });
    fc.assert(
      fc.property(tiersArb, fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 400 }), (ts, included, patients) => {
        const priced = tieredAmount(patients, ts, included);
        const lines = patientTierLines("2026-03-01", priced.tiers, included);
        expect(lines.reduce((n, l) => n + l.amount, 0)).toBe(priced.amount);
        for (const l of lines) {
          expect(l.amount).toBe(l.quantity * l.unitAmount);
          expect(l.amount).toBeGreaterThan(0);
          expect(l.rankFrom).toBeGreaterThan(included);
          if (l.rankTo !== null) expect(l.rankFrom + l.quantity - 1).toBeLessThanOrEqual(l.rankTo);
          expect(lineDescription.safeParse(l.description).success).toBe(true);
        }
        // Every rank above the allowance up to `patients` lies in exactly one line or in a free tier.
        let rank = included + 1;
        let lower = 1;
        for (const t of ts) {
          const upper = t.upTo ?? Number.POSITIVE_INFINITY;
          const count = Math.max(0, Math.min(upper, patients) - Math.max(lower, rank) + 1);
          const line = lines.find((l) => l.rankTo === t.upTo);
          expect(line?.quantity ?? 0).toBe(t.unitAmount > 0 ? count : 0);
          rank = Math.max(rank, Math.min(upper, patients) + 1);
          lower = upper + 1;
        }
      }),
      { seed: 61_2026, numRuns: 2_000 },
    );
  });
});

describe("fee line periods", () => {
  it("a prorated fee shows the days it bills: from the office's first day or the trial's end", () => {
    const jan = cycleContaining("2026-01-15", 1);
    expect(feeLineStart(jan, { officeStart: "2026-01-05", trialEnd: null })).toBe("2026-01-05");
    expect(feeLineStart(jan, { officeStart: "2026-01-05", trialEnd: "2026-01-20" })).toBe("2026-01-20");
    expect(feeLineStart(jan, { officeStart: "2025-12-05", trialEnd: null })).toBe("2026-01-01");
    // A cycle wholly in the trial bills no day: the line (if any) keeps the cycle's start.
    expect(feeLineStart(jan, { officeStart: "2026-01-01", trialEnd: "2026-03-01" })).toBe("2026-01-01");
  });
});
