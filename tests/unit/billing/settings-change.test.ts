import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planClose, type CloseInput } from "../../../src/billing/billable";
import { addDays, cycleContaining, daysBetween, MIN_TRANSITION_DAYS, nextCycle, startOfLocalDay, transitionCycle } from "../../../src/billing/calendar";

/** docs/payment-plan.md §4.2: a time zone or anchor day change from the next cycle. */
const version = { id: "v1", baseFee: 4900, tiers: [{ upTo: null, unitAmount: 500 }], includedPatients: 0 };

function close(input: Partial<CloseInput> & Pick<CloseInput, "cycle" | "at">): ReturnType<typeof planClose> {
  return planClose({
    timeZone: "America/New_York",
    anchorDay: 1,
    status: "active",
    trialEndsAt: null,
    cancelAtPeriodEnd: false,
    draftVersion: version,
    nextVersion: version,
    events: [],
    ...input,
  });
}

describe("the transition cycle (§4.2.3) and its fee (§4.2.4): the worked examples", () => {
  it("anchor 1 → 20: Dec 1 – Dec 20, fee 4,900 × 19 ÷ 30 = 3,103", () => {
    expect(transitionCycle("2026-12-01", 20)).toEqual({ cycle: { start: "2026-12-01", end: "2026-12-20" }, feeCycle: { start: "2026-11-20", end: "2026-12-20" } });
    const out = close({ cycle: { start: "2026-11-01", end: "2026-12-01" }, at: Date.UTC(2026, 11, 1, 6), pending: { timeZone: "America/New_York", anchorDay: 20 } });
    expect(out.open?.cycle).toEqual({ start: "2026-12-01", end: "2026-12-20" });
    expect(out.open?.baseFee).toBe(3103);
    expect(out.settings).toEqual({ timeZone: "America/New_York", anchorDay: 20 });
  });

  it("anchor 1 → 10: 9 days would be too short, so Dec 1 – Jan 10 (40 days), fee 4,900 × 40 ÷ 31 = 6,323", () => {
    expect(transitionCycle("2026-12-01", 10)).toEqual({ cycle: { start: "2026-12-01", end: "2027-01-10" }, feeCycle: { start: "2026-12-10", end: "2027-01-10" } });
    const out = close({ cycle: { start: "2026-11-01", end: "2026-12-01" }, at: Date.UTC(2026, 11, 1, 6), pending: { timeZone: "America/New_York", anchorDay: 10 } });
    expect(out.open?.baseFee).toBe(6323);
  });

  it("anchor 31 → 15 from Feb 28 2027: Feb 28 – Mar 15 (15 days), fee 4,900 × 15 ÷ 28 = 2,625", () => {
    expect(transitionCycle("2027-02-28", 15)).toEqual({ cycle: { start: "2027-02-28", end: "2027-03-15" }, feeCycle: { start: "2027-02-15", end: "2027-03-15" } });
    const out = close({ anchorDay: 31, cycle: { start: "2027-01-31", end: "2027-02-28" }, at: Date.UTC(2027, 1, 28, 6), pending: { timeZone: "America/New_York", anchorDay: 15 } });
    expect(out.open?.baseFee).toBe(2625);
  });

  it("a new zone: the next cycle starts at the instant the old one ended and ends at midnight in the new zone", () => {
    const out = close({ cycle: { start: "2026-11-01", end: "2026-12-01" }, at: Date.UTC(2026, 11, 1, 6), pending: { timeZone: "Europe/Berlin", anchorDay: 1 } });
    expect(out.closed[0]!.endAt).toBe(Date.parse("2026-12-01T05:00:00Z"));
    expect(out.open).toMatchObject({ cycle: { start: "2026-12-01", end: "2027-01-01" }, startAt: Date.parse("2026-12-01T05:00:00Z"), endAt: Date.parse("2026-12-31T23:00:00Z"), baseFee: 4900 });
    expect(out.settings).toEqual({ timeZone: "Europe/Berlin", anchorDay: 1 });
  });

  it("a catch-up close applies the change once, after the current cycle, and follows the new anchor after the transition", () => {
    // Closed on Jan 25 2027: Nov (old settings), the transition Dec 1 – Dec 20, then Dec 20 – Jan 20; Jan 20 – Feb 20 opens.
    const out = close({ cycle: { start: "2026-11-01", end: "2026-12-01" }, at: Date.UTC(2027, 0, 25), pending: { timeZone: "America/Chicago", anchorDay: 20 } });
    expect(out.closed.map((b) => [b.cycle.start, b.cycle.end, b.baseFee])).toEqual([
      ["2026-11-01", "2026-12-01", 4900],
      ["2026-12-01", "2026-12-20", 3103],
      ["2026-12-20", "2027-01-20", 4900],
    ]);
    expect(out.open?.cycle).toEqual({ start: "2027-01-20", end: "2027-02-20" });
    // Contiguous in time although the zone changed: each cycle starts where the one before ended.
    const all = [...out.closed, out.open!];
    for (let i = 1; i < all.length; i++) expect(all[i]!.startAt).toBe(all[i - 1]!.endAt);
    expect(all[2]!.endAt).toBe(startOfLocalDay("2027-01-20", "America/Chicago"));
  });

  it("without a pending change nothing moves (the settings stay)", () => {
    const out = close({ cycle: { start: "2026-11-01", end: "2026-12-01" }, at: Date.UTC(2026, 11, 1, 6) });
    expect(out.open?.cycle).toEqual({ start: "2026-12-01", end: "2027-01-01" });
    expect(out.settings).toEqual({ timeZone: "America/New_York", anchorDay: 1 });
  });
});

describe("the transition cycle, over the calendar (property)", () => {
  const date = fc.integer({ min: 0, max: 365 * 8 }).map((d) => addDays("2024-01-01", d));
  it("is at least 15 days, at most one month and 15 days, and ends where the new anchor's cycles run", () => {
    fc.assert(
      fc.property(date, fc.integer({ min: 1, max: 31 }), fc.integer({ min: 1, max: 31 }), (day, oldAnchor, newAnchor) => {
        const start = cycleContaining(day, oldAnchor).start;
        const { cycle, feeCycle } = transitionCycle(start, newAnchor);
        const days = daysBetween(cycle.start, cycle.end);
        expect(cycle.start).toBe(start);
        const aligned = cycleContaining(start, newAnchor).start === start;
        if (!aligned) expect(days).toBeGreaterThanOrEqual(MIN_TRANSITION_DAYS);
        expect(days).toBeLessThanOrEqual(31 + MIN_TRANSITION_DAYS);
        // Its end is a start of the new anchor, and its fee cycle is the new anchor's cycle ending there.
        expect(cycleContaining(cycle.end, newAnchor).start).toBe(cycle.end);
        expect(feeCycle.end).toBe(cycle.end);
        expect(nextCycle(feeCycle, newAnchor).start).toBe(cycle.end);
        expect(cycleContaining(feeCycle.start, newAnchor)).toEqual(feeCycle);
      }),
      { seed: 4_2026, numRuns: 3000 },
    );
  });
});
