import fc from "fast-check";
import { addDays, startOfLocalDay } from "../../src/billing/calendar";
import type { PriceTier } from "../../src/db/plans";

/**
 * A reference model of docs/payment-plan.md §5.3 written straight from the rule's sentence — "a
 * patient is billable in cycle C iff, by every event known when C is closed, the patient was
 * active at some instant of [start(C), end(C))" — and of §1.3 (tiers by rank), §1.4 (proration
 * half up) and §3.2 (cycle dates), independent of src/billing's code except for the zone
 * conversion of a local date to its first instant (§3.3, `startOfLocalDay`, tested on its own).
 * Slow and obvious on purpose.
 */

export type ModelEvent = { patient: string; kind: "activate" | "deactivate"; at: number; receivedAt: number };
export type ModelPlan = { baseFee: number; tiers: PriceTier[]; includedPatients: number; trialDays: number };
export type ModelOffice = { timeZone: string; anchorDay: number; startsOn: string; plan: ModelPlan };
export type ModelCycle = { start: string; end: string; startAt: number; endAt: number };
export type ModelInvoice = {
  cycle: ModelCycle;
  patients: string[];
  patientsAmount: number;
  baseFee: number;
  /** §8.9: what the invoice before carried into this one (below the minimum charge), part of `total`. */
  carriedIn: number;
  total: number;
  /** §8.9: `open` (collected through Stripe), `paid` (a zero total, or carried to the next invoice), `void` (written off). */
  status: "open" | "paid" | "void";
  carried: boolean;
  closedAt: number;
};

/** §8.9 for the model's plans (usd): Stripe's minimum charge, 0.50. */
export const MODEL_MINIMUM_CHARGE = 50;

/**
 * §8.9 from its sentences: "a total above 0 and below the minimum is carried to the office's next
 * invoice as a line of its own; that invoice's total includes it; with no next invoice it is
 * written off". `amounts`: each invoice's own lines, in order; `hasNext`: a draft follows the last.
 */
export function modelSettle(amounts: number[], minimum: number, hasNext: boolean) {
  const out: { carriedIn: number; total: number; status: "open" | "paid" | "void"; carried: boolean }[] = [];
  for (let i = 0; i < amounts.length; i++) {
    const carriedIn = i > 0 && out[i - 1]!.carried ? out[i - 1]!.total : 0;
    const total = amounts[i]! + carriedIn;
    const below = total > 0 && total < minimum;
    const next = i < amounts.length - 1 || hasNext;
    out.push({ carriedIn, total, status: total === 0 ? "paid" : below ? (next ? "paid" : "void") : "open", carried: below && next });
  }
  return out;
}

const pad = (n: number) => String(n).padStart(2, "0");
const lastDay = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate();
/** §3.2: the cycle starting in month m of year y. */
const startIn = (y: number, m: number, anchor: number) => `${y}-${pad(m)}-${pad(Math.min(anchor, lastDay(y, m)))}`;

/** §3.2: the office's cycles, from the one holding its start date, `count` of them. */
export function modelCycles(office: ModelOffice, count: number): ModelCycle[] {
  let y = Number(office.startsOn.slice(0, 4));
  let m = Number(office.startsOn.slice(5, 7));
  if (office.startsOn < startIn(y, m, office.anchorDay)) [y, m] = m === 1 ? [y - 1, 12] : [y, m - 1];
  const starts: string[] = [];
  for (let i = 0; i <= count; i++) {
    starts.push(startIn(y, m, office.anchorDay));
    [y, m] = m === 12 ? [y + 1, 1] : [y, m + 1];
  }
  return starts.slice(0, count).map((start, i) => ({
    start,
    end: starts[i + 1]!,
    startAt: startOfLocalDay(start, office.timeZone),
    endAt: startOfLocalDay(starts[i + 1]!, office.timeZone),
  }));
}

/** §5.2: active at instant t — the latest events at or before t say so, a deactivation outweighing. */
function activeAt(events: ModelEvent[], t: number): boolean {
  const before = events.filter((e) => e.at <= t);
  if (before.length === 0) return false;
  const latest = Math.max(...before.map((e) => e.at));
  const atLatest = before.filter((e) => e.at === latest);
  return !atLatest.some((e) => e.kind === "deactivate");
}

/**
 * "Active at some instant of [from, to)": the state only changes at event instants, so the
 * instants to look at are `from` and every event instant inside the span.
 */
export function modelBillable(known: ModelEvent[], from: number, to: number): string[] {
  const patients = [...new Set(known.map((e) => e.patient))];
  return patients
    .filter((p) => {
      const mine = known.filter((e) => e.patient === p);
      const instants = [from, ...mine.map((e) => e.at).filter((t) => t > from && t < to)];
      return instants.some((t) => activeAt(mine, t));
    })
    .sort();
}

/** §1.3: rank r costs the unit amount of the tier holding r, ranks 1…included cost nothing. */
export function modelTiered(n: number, tiers: PriceTier[], included: number): number {
  let sum = 0;
  for (let r = included + 1; r <= n; r++) sum += tiers.find((t) => t.upTo === null || r <= t.upTo)!.unitAmount;
  return sum;
}

const dayNumber = (d: string) => Date.UTC(Number(d.slice(0, 4)), Number(d.slice(5, 7)) - 1, Number(d.slice(8, 10))) / 86_400_000;

/** §1.4, §6.4, §6.5: the base fee for the days billed (from the office's start and the trial's end). */
function modelBaseFee(office: ModelOffice, cycle: ModelCycle): number {
  const trialEnd = office.plan.trialDays > 0 ? addDays(office.startsOn, office.plan.trialDays) : cycle.start;
  const from = [cycle.start, office.startsOn, trialEnd].sort().at(-1)!;
  const days = Math.max(0, dayNumber(cycle.end) - dayNumber(from));
  const cycleDays = dayNumber(cycle.end) - dayNumber(cycle.start);
  if (days >= cycleDays) return office.plan.baseFee;
  return Math.floor((2 * office.plan.baseFee * days + cycleDays) / (2 * cycleDays));
}

/**
 * Every cycle closed by the runs at `closeTimes`: each is closed by the first run at or after its
 * end, and billed from scratch with the events received by then.
 */
export function modelInvoices(office: ModelOffice, events: ModelEvent[], closeTimes: number[], horizon = 14): ModelInvoice[] {
  const last = Math.max(...closeTimes);
  const trialEndAt = office.plan.trialDays > 0 ? startOfLocalDay(addDays(office.startsOn, office.plan.trialDays), office.timeZone) : null;
  const own = modelCycles(office, horizon)
    .filter((c) => c.endAt <= last)
    .map((cycle) => {
      const closedAt = Math.min(...closeTimes.filter((t) => t >= cycle.endAt));
      const known = events.filter((e) => e.receivedAt <= closedAt);
      const inTrial = trialEndAt !== null && trialEndAt >= cycle.endAt;
      // §6.4: a trial ending inside the cycle bills from its end; a cycle wholly in it shows its count at 0.
      const from = trialEndAt !== null && trialEndAt > cycle.startAt && trialEndAt < cycle.endAt ? trialEndAt : cycle.startAt;
      const patients = modelBillable(known, from, cycle.endAt);
      const patientsAmount = inTrial ? 0 : modelTiered(patients.length, office.plan.tiers, office.plan.includedPatients);
      const baseFee = modelBaseFee(office, cycle);
      return { cycle, patients, patientsAmount, baseFee, closedAt };
    });
  // The office never cancels here: a draft always follows the last closed cycle.
  const settled = modelSettle(own.map((o) => o.patientsAmount + o.baseFee), MODEL_MINIMUM_CHARGE, true);
  return own.map((o, i) => ({ ...o, ...settled[i]! }));
}

// ---- generators -------------------------------------------------------------------------------

export const zones = ["America/New_York", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Pacific/Kiritimati", "Pacific/Honolulu", "UTC"];

export const planArb: fc.Arbitrary<ModelPlan> = fc
  .record({
    baseFee: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9_999 })),
    bounds: fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { maxLength: 2 }),
    units: fc.array(fc.integer({ min: 0, max: 1_500 }), { minLength: 3, maxLength: 3 }),
    includedPatients: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 })),
    trialDays: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 75 })),
  })
  .map(({ bounds, units, ...rest }) => {
    const ups = [...bounds].sort((a, b) => a - b);
    const tiers: PriceTier[] = [...ups.map((upTo, i) => ({ upTo, unitAmount: units[i]! })), { upTo: null, unitAmount: units[ups.length]! }];
    return { ...rest, tiers };
  });

export type Scenario = { office: ModelOffice; events: ModelEvent[]; closeTimes: number[] };

const HOUR = 3_600_000;
const DAY = 86_400_000;

/**
 * An office, a history of events (dated anywhere from before its start to after its last close,
 * often on a cycle's boundary, at shared instants, duplicated, received late and out of order)
 * and the runs that close its cycles (on time, hours or days late, catching up several cycles).
 */
export function scenarioArb(opts: { startsOn: fc.Arbitrary<string>; maxCycles: number; maxPatients: number; maxEvents: number; eventsFrom: "anytime" | "office_start" }): fc.Arbitrary<Scenario> {
  return fc
    .record({
      timeZone: fc.constantFrom(...zones),
      anchorDay: fc.oneof(fc.integer({ min: 1, max: 31 }), fc.constantFrom(1, 28, 29, 30, 31)),
      startsOn: opts.startsOn,
      plan: planArb,
      steps: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
      delays: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 * HOUR }), fc.integer({ min: 1, max: 12 * DAY })), { minLength: 3, maxLength: 3 }),
      rawEvents: fc.array(
        fc.record({
          patient: fc.integer({ min: 1, max: opts.maxPatients }).map((i) => `p${i}`),
          kind: fc.constantFrom("activate" as const, "deactivate" as const),
          where: fc.oneof(
            fc.record({ boundary: fc.integer({ min: 0, max: opts.maxCycles }), offset: fc.constantFrom(-HOUR, -1, 0, 1, HOUR) }),
            fc.record({ frac: fc.double({ min: 0, max: 1, noNaN: true }) }),
          ),
          lag: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 * HOUR }), fc.integer({ min: 0, max: 70 * DAY })),
          copies: fc.oneof(fc.constant(1), fc.constant(1), fc.constant(2)),
        }),
        { maxLength: opts.maxEvents },
      ),
    })
    .map(({ timeZone, anchorDay, startsOn, plan, steps, delays, rawEvents }) => {
      const office: ModelOffice = { timeZone, anchorDay, startsOn, plan };
      const cycles = modelCycles(office, opts.maxCycles + 2);
      // Close runs: after the end of cycle k (cumulative steps), late by a delay below the next end.
      const closeTimes: number[] = [];
      let k = -1;
      steps.forEach((step, i) => {
        k = Math.min(k + step, opts.maxCycles - 1);
        const end = cycles[k]!.endAt;
        const t = Math.min(end + delays[i]!, cycles[k + 1]!.endAt - 1);
        if (closeTimes.length === 0 || t > closeTimes.at(-1)!) closeTimes.push(t);
      });
      const lastClose = closeTimes.at(-1)!;
      const earliest = opts.eventsFrom === "office_start" ? startOfLocalDay(startsOn, timeZone) : cycles[0]!.startAt - 20 * DAY;
      const latest = lastClose + 10 * DAY;
      const events: ModelEvent[] = [];
      for (const e of rawEvents) {
        let at =
          "boundary" in e.where
            ? (cycles[Math.min(e.where.boundary, cycles.length - 1)]!.startAt + e.where.offset)
            : earliest + Math.floor(e.where.frac * (latest - earliest) / HOUR) * HOUR; // whole hours: shared instants
        at = Math.max(earliest, at);
        for (let c = 0; c < e.copies; c++) events.push({ patient: e.patient, kind: e.kind, at, receivedAt: at + e.lag });
      }
      return { office, events, closeTimes };
    });
}

/** A random date between two dates (inclusive). */
export function dateArb(from: string, to: string): fc.Arbitrary<string> {
  return fc.integer({ min: 0, max: dayNumber(to) - dayNumber(from) }).map((d) => addDays(from, d));
}
