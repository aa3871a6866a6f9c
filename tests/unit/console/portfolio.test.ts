import { describe, expect, it } from "vitest";
// @ts-expect-error -- the console's plain browser module (typed as text for the Worker, src/http/console/assets.d.ts)
import { AGE_BUCKETS, fromPlatformAnalytics, monthRange, patientsPerCycle, portfolio } from "../../../console/portfolio-data.js";

type Inv = { kind: string; status: string; currency: string; periodStart: string; total: number; amountPaid: number; finalizedAt: string | null; patients: { billable: number; included: number } | null };
const inv = (over: Partial<Inv>): Inv => ({ kind: "monthly", status: "paid", currency: "usd", periodStart: "2026-10-01", total: 10_000, amountPaid: 10_000, finalizedAt: "2026-11-01T05:00:00.000Z", patients: { billable: 10, included: 0 }, ...over });
const NOW = Date.parse("2026-12-02T12:00:00.000Z");
const DAY = 86_400_000;

describe("the console's portfolio figures (console/portfolio-data.js)", () => {
  it("MRR by the month a cycle starts, per currency, from finalized monthly invoices only", () => {
    const offices = [
      { id: "a", status: "active" },
      { id: "b", status: "past_due" },
      { id: "c", status: "trialing" },
    ];
    const invoices = new Map([
      ["a", [inv({ periodStart: "2026-10-01", total: 15_000 }), inv({ periodStart: "2026-11-01", total: 20_000 }), inv({ periodStart: "2026-12-01", status: "draft", total: 9_000, amountPaid: 0, finalizedAt: null, patients: { billable: 7, included: 0 } })]],
      [
        "b",
        [
          inv({ periodStart: "2026-11-15", status: "open", total: 30_000, amountPaid: 0 }),
          inv({ periodStart: "2026-11-15", kind: "setup", status: "paid", total: 25_000, patients: null }),
          inv({ periodStart: "2026-10-15", status: "void", total: 99_999 }),
          inv({ periodStart: "2026-11-01", currency: "eur", total: 5_000 }),
        ],
      ],
    ]);
    const p = portfolio(offices, invoices, NOW);
    expect(p.months).toEqual(["2026-10", "2026-11", "2026-12"]);
    // A void invoice counts nowhere; a setup fee is not recurring; the draft has no MRR point yet.
    expect(p.mrr).toEqual([
      { currency: "eur", values: [null, 5_000, null] },
      { currency: "usd", values: [15_000, 50_000, null] },
    ]);
    // Billable patients: every non-void monthly invoice, the draft's running count included.
    expect(p.billablePatients).toEqual([10, 30, 7]);
    expect(p.offices).toEqual({ total: 3, byStatus: { active: 1, past_due: 1, trialing: 1 } });
  });

  it("ages the unpaid balance of open invoices by whole days since they were finalized", () => {
    const at = (days: number) => new Date(NOW - days * DAY).toISOString();
    const invoices = new Map([
      [
        "a",
        [
          inv({ status: "open", total: 1_000, amountPaid: 0, finalizedAt: at(0) }),
          inv({ status: "open", total: 2_000, amountPaid: 500, finalizedAt: at(30) }),
          inv({ status: "open", total: 4_000, amountPaid: 0, finalizedAt: at(31) }),
          inv({ status: "open", kind: "one_off", total: 8_000, amountPaid: 0, finalizedAt: at(61), patients: null }),
          inv({ status: "open", total: 16_000, amountPaid: 0, finalizedAt: at(400) }),
          inv({ status: "open", total: 3_000, amountPaid: 3_000, finalizedAt: at(200) }), // nothing left to pay
          inv({ status: "paid", total: 32_000, amountPaid: 32_000, finalizedAt: at(200) }),
          inv({ status: "uncollectible", total: 64_000, amountPaid: 0, finalizedAt: at(200) }),
        ],
      ],
    ]);
    const p = portfolio([{ id: "a", status: "past_due" }], invoices, NOW);
    expect(AGE_BUCKETS.map((b: { label: string }) => b.label)).toEqual(["0–30 days", "31–60 days", "61–90 days", "over 90 days"]);
    expect(p.ageing).toEqual([{ currency: "usd", values: [1_000 + 1_500, 4_000, 8_000, 16_000] }]);
    expect(p.openInvoices).toBe(5);
  });

  it("an office's billable patients per cycle, oldest first, the draft marked as running", () => {
    const cycles = patientsPerCycle([
      inv({ periodStart: "2026-12-01", status: "draft", patients: { billable: 38, included: 0 } }),
      inv({ periodStart: "2026-11-01", patients: { billable: 42, included: 0 } }),
      inv({ periodStart: "2026-10-01", status: "void", patients: { billable: 99, included: 0 } }),
      inv({ periodStart: "2026-11-01", kind: "setup", patients: null }),
    ]);
    expect(cycles).toEqual([
      { cycle: "2026-11-01", billable: 42, running: false },
      { cycle: "2026-12-01", billable: 38, running: true },
    ]);
  });

  it("reads the platform analytics API's figures: months from the first busy one, patients summed over currencies, past due by age", () => {
    const month = (m: string, currency: string, mrr: number, mrrProjected: number, billablePatients: number) => ({ month: m, currency, mrr, mrrProjected, billablePatients });
    const p = fromPlatformAnalytics({
      asOf: "2026-12-02T12:00:00.000Z",
      months: [month("2026-09", "usd", 0, 0, 0), month("2026-10", "usd", 15_000, 15_000, 10), month("2026-11", "usd", 49_000, 49_000, 42), month("2026-11", "eur", 5_000, 5_000, 3), month("2026-12", "usd", 0, 35_300, 38)],
      pastDue: [
        { currency: "usd", "0-30": 75_600, "31-60": 0, "61-90": 0, over90: 1_000, invoices: 2 },
        { currency: "eur", "0-30": 0, "31-60": 0, "61-90": 0, over90: 0, invoices: 0 },
      ],
      currentCycles: [{ currency: "usd", offices: 3, billablePatients: 38, mrrProjected: 35_300, arrProjected: 423_600, total: 35_300 }],
    });
    expect(p.months).toEqual(["2026-10", "2026-11", "2026-12"]);
    expect(p.mrr).toEqual([
      { currency: "eur", values: [0, 5_000, 0] },
      { currency: "usd", values: [15_000, 49_000, null] },
    ]);
    expect(p.mrrProjected[1]).toEqual({ currency: "usd", values: [15_000, 49_000, 35_300] });
    expect(p.billablePatients).toEqual([10, 45, 38]);
    expect(p.ageing).toEqual([{ currency: "usd", values: [75_600, 0, 0, 1_000] }]);
    expect(p.pastDueInvoices).toBe(2);
  });

  it("asks the analytics API for the last twelve UTC months, across a year's end", () => {
    expect(monthRange(Date.parse("2026-12-31T23:59:59.000Z"))).toEqual({ from: "2026-01", to: "2026-12" });
    expect(monthRange(Date.parse("2027-01-01T00:00:00.000Z"))).toEqual({ from: "2026-02", to: "2027-01" });
    expect(monthRange(Date.parse("2026-03-15T00:00:00.000Z"), 3)).toEqual({ from: "2026-01", to: "2026-03" });
  });
});
