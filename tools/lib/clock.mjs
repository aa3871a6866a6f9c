// The one place the Node tools (demo seed, operator CLI, dev runner, bench, drills) take "now"
// from. Tests set it with `setNow`; a process can be started with OFFICE_BILLING_NOW (an ISO
// instant) to run a tool as of another moment (the Worker keeps its own clock: see src/clock.ts).

/** @type {number | null} */
let fixed = null;

/** Milliseconds since the epoch: the set instant, OFFICE_BILLING_NOW, or the system clock. */
export function now() {
  if (fixed !== null) return fixed;
  const env = process.env.OFFICE_BILLING_NOW;
  if (env) {
    const at = Date.parse(env);
    if (Number.isNaN(at)) throw new Error(`OFFICE_BILLING_NOW is not an ISO instant: ${env}`);
    return at;
  }
  return Date.now();
}

/** Sets (or, with null, clears) the instant `now()` answers. @param {number | null} at epoch ms */
export function setNow(at) {
  fixed = at;
}

/** The UTC calendar date (YYYY-MM-DD) of an instant (default: now). @param {number} [at] epoch ms */
export function utcDate(at = now()) {
  return new Date(at).toISOString().slice(0, 10);
}
