import type { PriceTier } from "../db/plans";
import { localDate, nextCycle, startOfLocalDay, transitionCycle, type Cycle } from "./calendar";
import { baseFeeFor, whollyInTrial } from "./invoice";
import { tieredAmount, type TierCharge } from "./pricing";

/**
 * The billable rule (docs/payment-plan.md §5.3) and the close that applies it cycle by cycle
 * (§6.3), as pure functions: events and office settings in, billable sets and amounts out. The
 * office object feeds them the events it read and writes what they return; the property test
 * checks them against a reference model of the rule.
 */

export type PatientEvent = { patientKey: string; kind: "activate" | "deactivate"; at: number };

/** A half-open span of time [from, to), in epoch milliseconds. */
export type Span = { from: number; to: number };

/**
 * Each patient's activity as half-open intervals [activation, next deactivation) (§5.2): events
 * in event-time order whatever their arrival order; at one instant a deactivation outweighs an
 * activation; duplicates change nothing. An interval still open ends at +∞.
 */
export function activityIntervals(events: readonly PatientEvent[]): Map<string, Span[]> {
  const byPatient = new Map<string, PatientEvent[]>();
  for (const e of events) {
    const list = byPatient.get(e.patientKey);
    if (list) list.push(e);
    else byPatient.set(e.patientKey, [e]);
  }
  const intervals = new Map<string, Span[]>();
  for (const [key, list] of byPatient) {
    // Same instant: activation first, so the deactivation is the one that stands.
    list.sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === "activate" ? -1 : 1));
    const spans: Span[] = [];
    let since: number | null = null;
    for (let i = 0; i < list.length; ) {
      const at = list[i]!.at;
      let activates = false;
      let deactivates = false;
      for (; i < list.length && list[i]!.at === at; i++) {
        if (list[i]!.kind === "activate") activates = true;
        else deactivates = true;
      }
      if (deactivates) {
        if (since !== null && since < at) spans.push({ from: since, to: at });
        since = null;
      } else if (activates && since === null) {
        since = at;
      }
    }
    if (since !== null) spans.push({ from: since, to: Number.POSITIVE_INFINITY });
    if (spans.length > 0) intervals.set(key, spans);
  }
  return intervals;
}

/** For each window, the patients active at some instant of it (sorted keys): the rule of §5.3. */
export function billableIn(events: readonly PatientEvent[], windows: readonly Span[]): string[][] {
  const intervals = activityIntervals(events);
  return windows.map((w) => {
    const keys: string[] = [];
    if (w.from >= w.to) return keys;
    for (const [key, spans] of intervals) {
      if (spans.some((s) => s.from < w.to && s.to > w.from)) keys.push(key);
    }
    return keys.sort();
  });
}

export type PricedVersion = { id: string; baseFee: number; tiers: PriceTier[]; includedPatients: number };

export type CycleBill = {
  cycle: Cycle;
  startAt: number;
  endAt: number;
  /** The billed part of the cycle: from the trial's end when it ends inside the cycle (§6.4). */
  window: Span;
  inTrial: boolean;
  versionId: string;
  patientKeys: string[];
  quantity: number;
  /** The plan's free allowance and the tier breakdown of `quantity` (§1.3); no tier in a trial. */
  includedPatients: number;
  tiers: TierCharge[];
  patientsAmount: number;
  /** The base fee of a cycle this close opens (the draft being closed keeps its own fee lines). */
  baseFee: number;
  /** The office's status once this cycle is closed (for the cycle opened: the final status). */
  statusAfter: string;
};

export type CloseInput = {
  timeZone: string;
  anchorDay: number;
  /** The office's current cycle: the one its draft invoices. */
  cycle: Cycle;
  status: string;
  trialEndsAt: number | null;
  cancelAtPeriodEnd: boolean;
  /** The plan version the draft is priced with, and the one cycles opened by this close use. */
  draftVersion: PricedVersion;
  nextVersion: PricedVersion;
  /** What is due: every cycle that has ended by `at`. */
  at: number;
  /** Every event known now (at least: all from the current cycle's start, and the latest before it). */
  events: readonly PatientEvent[];
  maxCycles?: number;
  /** A time zone / anchor day change that takes effect from the cycle after the current one (§4.2). */
  pending?: { timeZone: string; anchorDay: number } | null;
};

export type CloseOutcome = {
  /** The cycles closed, oldest first; the first is the office's current draft. */
  closed: CycleBill[];
  /** The cycle opened with its draft, or null when the office cancels at period end. */
  open: CycleBill | null;
  status: string;
  /** The office's time zone and anchor day once closed (the pending ones, when it had any). */
  settings: { timeZone: string; anchorDay: number };
};

/**
 * The close of every cycle of an office that has ended by `at` (§6.3): each on its own window with
 * the events known now, then the cycle it opens. Returns no closed cycle when nothing is due.
 */
export function planClose(input: CloseInput): CloseOutcome {
  const max = input.maxCycles ?? 36;
  type Planned = { cycle: Cycle; version: PricedVersion; statusAfter: string; tz: string; feeCycle?: Cycle };
  const cycles: Planned[] = [];
  let cycle: Cycle | null = input.cycle;
  let tz = input.timeZone;
  let anchorDay = input.anchorDay;
  let feeCycle: Cycle | undefined;
  let status = input.status;
  let open: Planned | null = null;
  while (cycle) {
    if (startOfLocalDay(cycle.end, tz) > input.at || cycles.length >= max) {
      open = cycles.length > 0 ? { cycle, version: input.nextVersion, statusAfter: status, tz, feeCycle } : null;
      break;
    }
    const closing = { cycle, tz, feeCycle };
    if (input.cancelAtPeriodEnd) {
      status = "canceled";
      cycle = null;
    } else {
      feeCycle = undefined;
      if (cycles.length === 0 && input.pending) {
        // The close of the current cycle applies the pending settings (§4.2.2): a transition cycle
        // follows when the anchor day changes (§4.2.3).
        tz = input.pending.timeZone;
        if (input.pending.anchorDay !== anchorDay) {
          anchorDay = input.pending.anchorDay;
          const t = transitionCycle(closing.cycle.end, anchorDay);
          cycle = t.cycle;
          feeCycle = t.feeCycle;
        } else cycle = nextCycle(closing.cycle, anchorDay);
      } else cycle = nextCycle(closing.cycle, anchorDay);
      const trialEndDate = input.trialEndsAt !== null ? localDate(input.trialEndsAt, tz) : null;
      if (status === "trialing" && (trialEndDate === null || trialEndDate <= cycle.start)) status = "active";
    }
    cycles.push({ ...closing, version: cycles.length === 0 ? input.draftVersion : input.nextVersion, statusAfter: status });
  }
  const all = open ? [...cycles, open] : cycles;
  // Cycles are contiguous in time: each starts at the instant the one before ended (a new time
  // zone moves only the end of the cycle it starts with, §4.2.3).
  let previousEnd: number | null = null;
  const bills = all.map(({ cycle, version, statusAfter, tz, feeCycle }) => {
    const startAt: number = previousEnd ?? startOfLocalDay(cycle.start, tz);
    const endAt = startOfLocalDay(cycle.end, tz);
    previousEnd = endAt;
    const from = input.trialEndsAt !== null && startAt < input.trialEndsAt && input.trialEndsAt < endAt ? input.trialEndsAt : startAt;
    const trialEnd = input.trialEndsAt !== null ? localDate(input.trialEndsAt, tz) : null;
    return { cycle, version, statusAfter, startAt, endAt, window: { from, to: endAt }, trialEnd, feeCycle };
  });
  const sets = billableIn(
    input.events,
    bills.map((b) => b.window),
  );
  const priced: CycleBill[] = bills.map((b, i) => {
    const inTrial = whollyInTrial(b.cycle, b.trialEnd);
    const keys = sets[i]!;
    const tiered = tieredAmount(keys.length, b.version.tiers, b.version.includedPatients);
    return {
      cycle: b.cycle,
      startAt: b.startAt,
      endAt: b.endAt,
      window: b.window,
      inTrial,
      versionId: b.version.id,
      patientKeys: keys,
      quantity: keys.length,
      includedPatients: b.version.includedPatients,
      tiers: inTrial ? [] : tiered.tiers,
      patientsAmount: inTrial ? 0 : tiered.amount,
      baseFee: baseFeeFor(b.cycle, b.version.baseFee, { officeStart: b.cycle.start, trialEnd: b.trialEnd, ...(b.feeCycle ? { feeCycle: b.feeCycle } : {}) }),
      statusAfter: b.statusAfter,
    };
  });
  return { closed: priced.slice(0, cycles.length), open: open ? priced.at(-1)! : null, status, settings: { timeZone: tz, anchorDay } };
}
