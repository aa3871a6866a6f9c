// The emulator's clock: real time plus an offset that `POST /_emulator/clock/advance` moves
// forward. Every time-based behaviour (automatic payment attempts, idempotency key expiry,
// webhook retries) is a task scheduled on this clock: it runs when real time reaches it, or at
// once when an advance passes it.

export function createClock({ offsetMs = 0 } = {}) {
  let offset = Number(offsetMs) || 0;
  /** Pending tasks: { at (clock ms), fn, timer }. */
  const tasks = new Set();

  const nowMs = () => Date.now() + offset;

  function arm(task) {
    if (task.timer) clearTimeout(task.timer);
    // Timers cap at 2^31-1 ms; a longer wait re-arms itself when it fires early.
    task.timer = setTimeout(() => fire(task), Math.min(Math.max(0, task.at - nowMs()), 2 ** 31 - 1));
    task.timer.unref?.();
  }
  function fire(task) {
    if (!tasks.has(task)) return;
    if (task.at > nowMs()) return arm(task);
    tasks.delete(task);
    clearTimeout(task.timer);
    task.fn();
  }

  return {
    /** Clock time in ms. */
    nowMs,
    /** Clock time in unix seconds (Stripe's timestamps). */
    now: () => Math.floor(nowMs() / 1000),
    get offsetMs() {
      return offset;
    },
    /** Runs `fn` once the clock reaches `delayMs` from now; returns a handle for `cancel`. */
    after(delayMs, fn) {
      const task = { at: nowMs() + Math.max(0, delayMs), fn, timer: null };
      tasks.add(task);
      arm(task);
      return task;
    },
    cancel(task) {
      if (!task || !tasks.has(task)) return;
      tasks.delete(task);
      clearTimeout(task.timer);
    },
    /** Moves the clock forward and runs every task now due, earliest first (tasks they add too). */
    advance(seconds) {
      const s = Number(seconds);
      if (!Number.isFinite(s) || s < 0) throw new Error("seconds must be a number >= 0");
      offset += Math.round(s * 1000);
      for (;;) {
        const due = [...tasks].filter((t) => t.at <= nowMs()).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        fire(due);
      }
      for (const t of tasks) arm(t);
      return nowMs();
    },
    /** Drops every pending task (reset, close). */
    clear() {
      for (const t of tasks) clearTimeout(t.timer);
      tasks.clear();
    },
    get pending() {
      return tasks.size;
    },
  };
}
