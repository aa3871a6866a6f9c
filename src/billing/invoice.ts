import { addDays, daysBetween, type Cycle, type LocalDate } from "./calendar";
import { prorate, type TierCharge } from "./pricing";

/**
 * Invoice assembly rules (docs/payment-plan.md §6). Pure: dates in, amounts and labels out.
 */
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "Nov 2026": the cycle's start month, the label of its monthly lines. */
export function periodLabel(cycleStart: LocalDate): string {
  const [y, m] = cycleStart.split("-");
  return `${MONTHS[Number(m) - 1]} ${y}`;
}

/** A rank with thousands separators: 10000 → "10,000". */
export function formatRank(rank: number): string {
  return String(rank).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export const lineDescriptions = {
  /** The draft's running count, replaced by tier lines when the cycle closes. */
  patients: (cycleStart: LocalDate) => `Active patients — ${periodLabel(cycleStart)}`,
  /** A tier line: "Active patients 51–200 — Nov 2026", "Active patients 201+ — Nov 2026", "Active patients 2 — Nov 2026". */
  patientTier: (cycleStart: LocalDate, rankFrom: number, rankTo: number | null) =>
    `Active patients ${formatRank(rankFrom)}${rankTo === null ? "+" : rankTo === rankFrom ? "" : `–${formatRank(rankTo)}`} — ${periodLabel(cycleStart)}`,
  baseFee: (cycleStart: LocalDate) => `Platform fee — ${periodLabel(cycleStart)}`,
  setupFee: () => "Setup fee",
  /** The total of an invoice below Stripe's minimum charge, carried to the next (§8.9): "Balance carried from Nov 2026". */
  carriedBalance: (cycleStart: LocalDate) => `Balance carried from ${periodLabel(cycleStart)}`,
  /** The discount line of a closed monthly invoice (§6.10). */
  discount: (cycleStart: LocalDate) => `Discount — ${periodLabel(cycleStart)}`,
} as const;

/**
 * The base fee of a cycle. Billed days run from the later of the cycle's start, the office's
 * start and the trial's end, to the cycle's end; the fee is prorated by billed days over the
 * cycle's days (§1.4). A cycle wholly in the trial, or before the office existed, bills 0.
 * `from`/`until` cut the window further (a plan change or a cancellation inside the cycle).
 */
export function baseFeeFor(
  cycle: Cycle,
  baseFee: number,
  opts: { officeStart: LocalDate; trialEnd: LocalDate | null; from?: LocalDate; until?: LocalDate; feeCycle?: Cycle },
): number {
  const from = [cycle.start, opts.officeStart, opts.trialEnd ?? cycle.start, opts.from ?? cycle.start].sort().at(-1)!;
  const until = [cycle.end, opts.until ?? cycle.end].sort()[0]!;
  const billedDays = Math.max(0, daysBetween(from, until));
  // A transition cycle (§4.2.4) is prorated over the new anchor's cycle it ends with — and a long
  // one bills more than one fee: fee + the prorated rest is exactly round_half_up(fee × days ÷ feeDays).
  const feeDays = daysBetween((opts.feeCycle ?? cycle).start, (opts.feeCycle ?? cycle).end);
  return billedDays > feeDays ? baseFee + prorate(baseFee, billedDays - feeDays, feeDays) : prorate(baseFee, billedDays, feeDays);
}

export type TierLine = { description: string; quantity: number; unitAmount: number; amount: number; rankFrom: number; rankTo: number | null };

/**
 * The patients lines of a closed cycle (§6.1): one per tier that charges — quantity × unit price,
 * the ranks it covers starting above the free allowance — and none for a tier that charges
 * nothing (no patient in it beyond the allowance, or a unit price of 0). Their amounts add up to
 * the tiered amount. A trial cycle's breakdown is empty: it has no patients line.
 */
export function patientTierLines(cycleStart: LocalDate, tiers: readonly TierCharge[], includedPatients: number): TierLine[] {
  return tiers
    .filter((t) => t.quantity > 0 && t.unitAmount > 0)
    .map((t) => {
      const rankFrom = Math.max(t.from, includedPatients + 1);
      return { description: lineDescriptions.patientTier(cycleStart, rankFrom, t.to), quantity: t.quantity, unitAmount: t.unitAmount, amount: t.amount, rankFrom, rankTo: t.to };
    });
}

/**
 * The first day a fee line bills (§6.5): the latest of the cycle's start, the office's first day
 * and the trial's end — the start of the period a prorated fee line shows.
 */
export function feeLineStart(cycle: Cycle, opts: { officeStart: LocalDate; trialEnd: LocalDate | null }): LocalDate {
  const from = [cycle.start, opts.officeStart, opts.trialEnd ?? cycle.start].sort().at(-1)!;
  return from < cycle.end ? from : cycle.start;
}

/** True when every day of the cycle lies before the trial's end. */
export function whollyInTrial(cycle: Cycle, trialEnd: LocalDate | null): boolean {
  return trialEnd !== null && trialEnd >= cycle.end;
}

/** The local date a trial of `trialDays` days started on `start` ends (exclusive), or null. */
export function trialEndDate(start: LocalDate, trialDays: number): LocalDate | null {
  return trialDays > 0 ? addDays(start, trialDays) : null;
}

/**
 * A fee line cut short at `until` (exclusive): its amount times the billed days it keeps over the
 * billed days it had, rounded half up (§1.4). Billed days start at the latest of the line's start,
 * the office's start and the trial's end. Used when a plan changes or the office cancels inside
 * the cycle, so each plan's days keep the price they were billed at.
 */
export function trimFeeLine(
  line: { amount: number; periodStart: LocalDate; periodEnd: LocalDate },
  until: LocalDate,
  opts: { officeStart: LocalDate; trialEnd: LocalDate | null },
): number {
  const from = [line.periodStart, opts.officeStart, opts.trialEnd ?? line.periodStart].sort().at(-1)!;
  const had = Math.max(0, daysBetween(from, line.periodEnd));
  const kept = Math.max(0, daysBetween(from, [until, line.periodEnd].sort()[0]!));
  return had === 0 ? 0 : prorate(line.amount, Math.min(kept, had), had);
}
