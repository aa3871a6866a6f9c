/** Calendar months `YYYY-MM` and their UTC bounds (docs/analytics.md, "Months"). */

export const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

/** The first instant of a month, UTC (epoch ms). */
export function monthStart(month: string): number {
  const [y, m] = month.split("-").map(Number) as [number, number];
  return Date.UTC(y, m - 1, 1);
}

/** The month after this one. */
export function nextMonth(month: string): string {
  const [y, m] = month.split("-").map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, "0")}`;
}

/** The UTC month of an instant. */
export const monthOf = (at: number) => new Date(at).toISOString().slice(0, 7);

/** Every month from `from` to `to`, both included (empty when `to` is before `from`). */
export function monthsBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let m = from; m <= to; m = nextMonth(m)) out.push(m);
  return out;
}

/** Number of days in a month. */
export const daysIn = (month: string) => (monthStart(nextMonth(month)) - monthStart(month)) / 86_400_000;
