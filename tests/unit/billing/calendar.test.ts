import { describe, expect, it } from "vitest";
import { cycleContaining, daysBetween, localDate, nextCycle, startOfLocalDay } from "../../../src/billing/calendar";

describe("cycles and anchor days (docs/payment-plan.md, Cycles)", () => {
  it("anchor 1: calendar months", () => {
    expect(cycleContaining("2026-02-14", 1)).toEqual({ start: "2026-02-01", end: "2026-03-01" });
  });

  it.each([
    // [anchor, year, expected cycles around February]
    [29, 2028, ["2028-01-29", "2028-02-29", "2028-03-29"]], // leap year: Feb 29 exists
    [29, 2026, ["2026-01-29", "2026-02-28", "2026-03-29"]], // common year: the last day instead
    [30, 2028, ["2028-01-30", "2028-02-29", "2028-03-30"]],
    [30, 2026, ["2026-01-30", "2026-02-28", "2026-03-30"]],
    [31, 2028, ["2028-01-31", "2028-02-29", "2028-03-31"]],
    [31, 2026, ["2026-01-31", "2026-02-28", "2026-03-31"]],
  ] as const)("anchor %i in %i: February starts on its last day when shorter", (anchor, year, starts) => {
    let cycle = cycleContaining(starts[0], anchor);
    expect(cycle.start).toBe(starts[0]);
    for (const start of starts.slice(1)) {
      cycle = nextCycle(cycle, anchor);
      expect(cycle.start).toBe(start);
    }
  });

  it("anchor 31 through a 30-day month and back", () => {
    expect(cycleContaining("2026-04-15", 31)).toEqual({ start: "2026-03-31", end: "2026-04-30" });
    expect(cycleContaining("2026-04-30", 31)).toEqual({ start: "2026-04-30", end: "2026-05-31" });
    expect(cycleContaining("2026-05-30", 31)).toEqual({ start: "2026-04-30", end: "2026-05-31" });
  });

  it("a date before this month's anchor belongs to the cycle that began last month", () => {
    expect(cycleContaining("2026-03-10", 15)).toEqual({ start: "2026-02-15", end: "2026-03-15" });
    expect(cycleContaining("2027-01-05", 20)).toEqual({ start: "2026-12-20", end: "2027-01-20" });
  });

  it("cycle lengths in days", () => {
    expect(daysBetween("2026-02-01", "2026-03-01")).toBe(28);
    expect(daysBetween("2028-02-01", "2028-03-01")).toBe(29);
    expect(daysBetween("2026-01-31", "2026-02-28")).toBe(28);
  });
});

describe("local days and time zones", () => {
  it("starts a day at local midnight across DST changes (New York, spring and fall)", () => {
    // 2026-03-08: clocks jump 02:00 → 03:00; the day still starts at 05:00Z (EST).
    expect(new Date(startOfLocalDay("2026-03-08", "America/New_York")).toISOString()).toBe("2026-03-08T05:00:00.000Z");
    expect(new Date(startOfLocalDay("2026-03-09", "America/New_York")).toISOString()).toBe("2026-03-09T04:00:00.000Z");
    // 2026-11-01: clocks fall back 02:00 → 01:00; that day lasts 25 hours.
    const start = startOfLocalDay("2026-11-01", "America/New_York");
    const next = startOfLocalDay("2026-11-02", "America/New_York");
    expect(new Date(start).toISOString()).toBe("2026-11-01T04:00:00.000Z");
    expect((next - start) / 3_600_000).toBe(25);
  });

  it("starts a day at its first existing instant when DST skips midnight (Santiago)", () => {
    // 2026-09-06 00:00 does not exist in America/Santiago: clocks go from 23:59:59 to 01:00.
    const start = startOfLocalDay("2026-09-06", "America/Santiago");
    expect(localDate(start, "America/Santiago")).toBe("2026-09-06");
    expect(localDate(start - 1, "America/Santiago")).toBe("2026-09-05");
  });

  it("offices at UTC+14 and UTC−10 close on the same instant", () => {
    // 2026-11-30T10:00Z is Dec 1 00:00 in Kiritimati (UTC+14) and Nov 30 00:00 in Honolulu (UTC−10).
    const instant = Date.UTC(2026, 10, 30, 10, 0);
    expect(startOfLocalDay("2026-12-01", "Pacific/Kiritimati")).toBe(instant);
    expect(startOfLocalDay("2026-11-30", "Pacific/Honolulu")).toBe(instant);
    const kiritimati = cycleContaining(localDate(instant - 1, "Pacific/Kiritimati"), 1); // anchor 1
    const honolulu = cycleContaining(localDate(instant - 1, "Pacific/Honolulu"), 30); // anchor 30
    expect(kiritimati.end).toBe(localDate(instant, "Pacific/Kiritimati"));
    expect(honolulu.end).toBe(localDate(instant, "Pacific/Honolulu"));
  });
});
