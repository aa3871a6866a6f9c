/**
 * The one place the Worker takes "now" from (docs/payment-plan.md: the clock is an input). Code
 * asks `now()`; tests that need another instant call `setClock` (workerd runs the Worker, its
 * Durable Objects and the tests in one isolate) and restore it after. Durations and timers
 * (backoff, leases, rate limits, alarms) run on the real clock.
 */
let source: () => number = () => Date.now();

export function now(): number {
  return source();
}

/** Sets the clock (a fixed instant or a function), or restores the system clock with none. */
export function setClock(clock?: number | (() => number)): void {
  source = clock === undefined ? () => Date.now() : typeof clock === "number" ? () => clock : clock;
}

/** The UTC calendar date of an instant. */
export function utcDate(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** The latest calendar date on Earth at an instant (UTC+14, Pacific/Kiritimati). */
export function latestDateOnEarth(at: number): string {
  return utcDate(at + 14 * 3_600_000);
}
