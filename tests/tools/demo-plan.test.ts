import { describe, expect, it } from "vitest";
import { cycleContaining, localDate, startOfLocalDay } from "../../src/billing/calendar";
// @ts-expect-error -- plain ESM JavaScript tool
import { DEMO_OFFICES, DEMO_TERMS, demoPlan, demoPlanProblems, NEW_PATIENTS } from "../../tools/lib/demo-plan.mjs";
import { creditNoteMemoKeys, creditNoteReasons } from "../../src/db/credit-notes";

type Event = { patient: string; kind: "activate" | "deactivate"; at: number };
type Cycle = { start: string; end: string; startAt: number; endAt: number };
type Office = { key: string; timeZone: string; anchor: number; patients: number; startsOn: string; cycles: [Cycle, Cycle]; firstCycleEvents: Event[]; currentCycleEvents: Event[] };
type Plan = { now: number; offices: Office[] };

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Every promise of the plan as of `now`, checked against the billing calendar of src/ (the rule book's). */
function checkPlan(now: number, againstCalendar = true) {
  const plan = demoPlan(now) as Plan;
  const at = new Date(now).toISOString();
  expect(demoPlanProblems(plan), at).toEqual([]);
  expect(plan.offices.map((o) => o.key)).toEqual(["lakeside", "harbor", "spree"]);
  for (const o of plan.offices) {
    const [first, current] = o.cycles;
    // The cycles are the billing calendar's: the current one holds now, the first one is the one before.
    if (againstCalendar) checkCycles(o, now);
    // Ended by now (the run closes it), and now is inside the current one.
    expect(first.endAt).toBeLessThanOrEqual(now);
    expect(current.startAt <= now && now < current.endAt).toBe(true);
    // What the banner promises: every patient active in the first cycle, some leaving in it, new ones in the current one.
    const activations = o.firstCycleEvents.filter((e) => e.kind === "activate");
    expect(activations).toHaveLength(o.patients);
    expect(o.firstCycleEvents.filter((e) => e.kind === "deactivate")).toHaveLength(Math.floor(o.patients / 6));
    expect(o.currentCycleEvents).toHaveLength(NEW_PATIENTS);
    for (const e of [...o.firstCycleEvents, ...o.currentCycleEvents]) {
      if (e.at > now) expect.fail(`${o.key}: ${e.kind} of ${e.patient} lies in the future as of ${at}`);
      const cycle = o.firstCycleEvents.includes(e) ? first : current;
      if (e.at < cycle.startAt || e.at >= cycle.endAt) expect.fail(`${o.key}: ${e.kind} of ${e.patient} lies outside its cycle as of ${at}`);
    }
  }
}

/** The plan's cycles and their instants are those of src/billing/calendar.ts. */
function checkCycles(o: Office, now: number) {
  const [first, current] = o.cycles;
  const at = new Date(now).toISOString();
  expect(current.start, `${o.key} ${at}`).toBe(cycleContaining(localDate(now, o.timeZone), o.anchor).start);
  expect(current.end).toBe(cycleContaining(localDate(now, o.timeZone), o.anchor).end);
  expect(first).toMatchObject(cycleContaining(o.startsOn, o.anchor));
  expect(first.end).toBe(current.start);
  expect(first.startAt).toBe(startOfLocalDay(first.start, o.timeZone));
  expect(current.startAt).toBe(startOfLocalDay(current.start, o.timeZone));
  expect(current.endAt).toBe(startOfLocalDay(current.end, o.timeZone));
  for (const e of o.firstCycleEvents) expect(localDate(e.at, o.timeZone) >= first.start && localDate(e.at, o.timeZone) < first.end, at).toBe(true);
  for (const e of o.currentCycleEvents) expect(localDate(e.at, o.timeZone) >= current.start, at).toBe(true);
}

function everyDay(year: number, hours: number[]) {
  const days: number[] = [];
  for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += DAY) for (const h of hours) days.push(t + h * HOUR);
  return days;
}

describe("the demo's plan of dates (tools/lib/demo-plan.mjs)", () => {
  it("has three offices in three time zones, on two anchor days", () => {
    expect(new Set(DEMO_OFFICES.map((o: Office) => o.timeZone)).size).toBe(3);
    expect(new Set(DEMO_OFFICES.map((o: Office) => o.anchor))).toEqual(new Set([1, 15]));
  });

  it("holds on every day of a common year (2027) and a leap year (2028), at the start, middle and end of the UTC day", () => {
    const instants = [...everyDay(2027, [0, 12, 23.999]), ...everyDay(2028, [0, 12, 23.999])];
    expect(instants.length).toBe((365 + 366) * 3);
    // Against src/billing/calendar.ts on every seventh instant (its Intl calls are slow); the plan's own promises on all.
    instants.forEach((now, i) => checkPlan(Math.floor(now), i % 7 === 0));
  }, 180_000);

  it("holds at every UTC hour around month ends, the 1st and the 15th, leap days and DST changes", () => {
    const days = [
      "2026-11-30", "2026-12-01", // the day a fresh clone failed
      "2027-01-31", "2027-02-28", "2027-03-01", "2028-02-28", "2028-02-29", "2028-03-01",
      "2027-03-14", "2027-03-28", "2027-10-31", "2027-11-07", // DST in the US and in Europe
      "2027-04-14", "2027-04-15", "2027-12-31", "2028-01-01", "2100-02-28", "2100-03-01",
    ];
    for (const day of days) {
      const start = Date.parse(`${day}T00:00:00Z`);
      for (let h = 0; h < 24; h++) {
        checkPlan(start + h * HOUR);
        checkPlan(start + h * HOUR + 59 * 60_000, false);
      }
    }
  }, 180_000);

  it("holds at the first instant of each office's cycle (the current cycle has just begun)", () => {
    for (const month of [1, 2, 3, 10, 11, 12]) {
      for (const o of DEMO_OFFICES as Office[]) {
        const day = `2027-${String(month).padStart(2, "0")}-${String(o.anchor).padStart(2, "0")}`;
        const begun = startOfLocalDay(day, o.timeZone);
        checkPlan(begun);
        checkPlan(begun + 1);
      }
    }
  });

  it("is a pure function of now", () => {
    const now = Date.parse("2026-12-01T00:30:00Z");
    expect(demoPlan(now)).toEqual(demoPlan(now));
  });

  it("reports an unsound plan instead of sending it", () => {
    const plan = demoPlan(Date.parse("2026-12-01T10:00:00Z")) as Plan;
    plan.offices[0]!.currentCycleEvents[0]!.at = plan.now + HOUR;
    plan.offices[1]!.firstCycleEvents[0]!.at = plan.offices[1]!.cycles[1].startAt;
    const problems = demoPlanProblems(plan) as string[];
    expect(problems).toContainEqual(expect.stringMatching(/^lakeside: activate of new-1 lies in the future/));
    expect(problems).toContainEqual(expect.stringMatching(/^harbor: activate of 1 lies outside/));
  });

  it("shows one office on net terms, one discount and one credit note, on demo offices, whatever the date", () => {
    const keys = (DEMO_OFFICES as Office[]).map((o) => o.key);
    expect(keys).toContain(DEMO_TERMS.netTerms.office);
    expect(keys).toContain(DEMO_TERMS.discount.office);
    // The credit note is on the net-terms office's invoice: open (sent by e-mail), so it lowers the amount due.
    expect(DEMO_TERMS.creditNote.office).toBe(DEMO_TERMS.netTerms.office);
    expect(DEMO_TERMS.netTerms.daysUntilDue).toBeGreaterThanOrEqual(1);
    expect(DEMO_TERMS.netTerms.daysUntilDue).toBeLessThanOrEqual(90);
    expect(creditNoteReasons).toContain(DEMO_TERMS.creditNote.reason);
    expect(creditNoteMemoKeys).toContain(DEMO_TERMS.creditNote.memo);
    // Below the smallest first invoice the net-terms office can have (Growth's base fee, 9,900) and above 0.
    expect(DEMO_TERMS.creditNote.amount).toBeGreaterThan(0);
    expect(DEMO_TERMS.creditNote.amount).toBeLessThan(9_900);
    expect(Number.isInteger(DEMO_TERMS.discount.percentOff) && DEMO_TERMS.discount.percentOff >= 1 && DEMO_TERMS.discount.percentOff <= 100).toBe(true);
    // The discount is not on the office whose card declines (its invoice is the dunning demo's).
    expect(DEMO_TERMS.discount.office).not.toBe("spree");
  });
});
