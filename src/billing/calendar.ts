/**
 * Calendar rules of billing cycles (docs/payment-plan.md, "Cycles"). Dates are local calendar
 * dates `YYYY-MM-DD` in the office's IANA time zone; a cycle is [start, end), end exclusive.
 * Pure functions, no I/O.
 */
export type LocalDate = string;
export type Cycle = { start: LocalDate; end: LocalDate };

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function parseDate(date: LocalDate): { y: number; m: number; d: number } {
  const match = DATE_RE.exec(date);
  if (!match) throw new RangeError(`not a YYYY-MM-DD date: ${date}`);
  return { y: Number(match[1]), m: Number(match[2]), d: Number(match[3]) };
}

export function formatDate(y: number, m: number, d: number): LocalDate {
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}

/** Days in month `m` (1–12) of year `y`, leap years included. */
export function daysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** Whole days from `a` to `b` (b − a). */
export function daysBetween(a: LocalDate, b: LocalDate): number {
  const pa = parseDate(a);
  const pb = parseDate(b);
  return Math.round((Date.UTC(pb.y, pb.m - 1, pb.d) - Date.UTC(pa.y, pa.m - 1, pa.d)) / 86_400_000);
}

export function addDays(date: LocalDate, days: number): LocalDate {
  const p = parseDate(date);
  const t = new Date(Date.UTC(p.y, p.m - 1, p.d + days));
  return formatDate(t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate());
}

/** The day a cycle starts in a month: the anchor day, or the month's last day when shorter. */
export function cycleStartIn(y: number, m: number, anchorDay: number): LocalDate {
  return formatDate(y, m, Math.min(anchorDay, daysInMonth(y, m)));
}

const shiftMonth = (y: number, m: number, by: number) => {
  const index = y * 12 + (m - 1) + by;
  return { y: Math.floor(index / 12), m: (index % 12) + 1 };
};

/** The cycle that contains a local date. */
export function cycleContaining(date: LocalDate, anchorDay: number): Cycle {
  const { y, m } = parseDate(date);
  const thisStart = cycleStartIn(y, m, anchorDay);
  if (date >= thisStart) {
    const next = shiftMonth(y, m, 1);
    return { start: thisStart, end: cycleStartIn(next.y, next.m, anchorDay) };
  }
  const prev = shiftMonth(y, m, -1);
  return { start: cycleStartIn(prev.y, prev.m, anchorDay), end: thisStart };
}

/** No transition cycle is shorter than this many days (docs/payment-plan.md §4.2.3). */
export const MIN_TRANSITION_DAYS = 15;

/**
 * The cycle that starts on `start` when the office's anchor day becomes `anchorDay` (§4.2.3): it
 * ends at the first start date of the new anchor after `start`, or at the one after that when the
 * first would leave fewer than 15 days. `feeCycle` is the new anchor's cycle it ends with: the
 * denominator of its base fee's proration (§4.2.4).
 */
export function transitionCycle(start: LocalDate, anchorDay: number): { cycle: Cycle; feeCycle: Cycle } {
  const containing = cycleContaining(start, anchorDay);
  if (containing.start === start) return { cycle: containing, feeCycle: containing };
  if (daysBetween(start, containing.end) >= MIN_TRANSITION_DAYS) return { cycle: { start, end: containing.end }, feeCycle: containing };
  const following = nextCycle(containing, anchorDay);
  return { cycle: { start, end: following.end }, feeCycle: following };
}

/** The cycle right after `cycle`. */
export function nextCycle(cycle: Cycle, anchorDay: number): Cycle {
  return cycleContaining(cycle.end, anchorDay);
}

/** Formatters are costly to build and immutable: one per zone and kind, built on first use. */
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(kind: "date" | "time", timeZone: string): Intl.DateTimeFormat {
  const key = `${kind}|${timeZone}`;
  let f = formatters.get(key);
  if (!f) {
    f =
      kind === "date"
        ? new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
        : new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    formatters.set(key, f);
  }
  return f;
}

/** Local calendar date (`YYYY-MM-DD`) of an instant in an IANA time zone. */
export function localDate(instant: number, timeZone: string): LocalDate {
  const parts = formatter("date", timeZone).formatToParts(instant);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Offset of a time zone from UTC at an instant, in milliseconds (local − UTC). */
function offsetAt(instant: number, timeZone: string): number {
  const parts = formatter("time", timeZone).formatToParts(instant);
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant a local date begins in a time zone: its first moment (local midnight, or the first
 * existing local time when a DST change skips midnight).
 */
export function startOfLocalDay(date: LocalDate, timeZone: string): number {
  const { y, m, d } = parseDate(date);
  const naive = Date.UTC(y, m - 1, d);
  // Two passes settle the offset even when the day itself changes offset.
  let guess = naive - offsetAt(naive, timeZone);
  guess = naive - offsetAt(guess, timeZone);
  // If local midnight does not exist (skipped by DST), the day starts at the first instant whose local date is `date`.
  if (localDate(guess, timeZone) !== date) {
    let t = guess;
    for (let i = 0; i < 48 && localDate(t, timeZone) !== date; i++) t += 30 * 60_000;
    guess = t;
  }
  // The earliest instant of the date: step back while the previous minute is still the same date.
  while (localDate(guess - 60_000, timeZone) === date && localDate(guess, timeZone) === date) guess -= 60_000;
  return guess;
}

/** True when `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone }).format(0);
    return true;
  } catch {
    return false;
  }
}
