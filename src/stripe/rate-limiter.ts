import { DurableObject } from "cloudflare:workers";

/**
 * How far the pacer's window reaches past Stripe's second (ms): room for the time between our
 * grant and the request's arrival at Stripe, which varies. It starts at MARGIN_START_MS, grows by
 * MARGIN_STEP_MS with each 429 of Stripe's rate limit (up to MARGIN_MAX_MS) and shrinks by 1 ms
 * after each `rps` grants without one (down to 0): it settles where 429s are rare.
 */
export const MARGIN_START_MS = 20;
export const MARGIN_STEP_MS = 10;
export const MARGIN_MAX_MS = 250;
/**
 * The longest line the pacer keeps, in seconds of grants at the limit: a caller past it is told
 * when to come back instead of waiting (its outbox item is retried then), so no office's run
 * waits longer than this for one request — an alarm's run stays far inside its 15 minutes even
 * when 100,000 offices want Stripe in the same hour.
 */
export const LINE_MAX_S = 30;

/**
 * The service-wide Stripe rate limit: one instance (`idFromName("stripe")`) grants every Stripe
 * request its moment to leave, so all office objects together stay under Stripe's limit (live
 * 100/s, test 25/s; `STRIPE_MAX_RPS`). A sliding window over the grants: at most `rps` in any
 * 1,000 ms + margin, and two grants at least half a spacing apart (no bursts). The call returns
 * at the caller's moment; a line longer than LINE_MAX_S is told when to come back instead. The window lives in
 * memory: after an eviction the next grant is at once (at worst one short burst; Stripe's 429 is retried).
 */
export class StripeRateLimiter extends DurableObject {
  /** The last `rps` grant times (ms), oldest first: the window the limit is held on. */
  #grants: number[] = [];
  /** The last `rps` planned times (ms) given to callers as they arrived; the newest may lie ahead. */
  #plan: number[] = [];
  /** Callers in line. */
  #waiting = 0;
  #rps = 100;
  #margin = MARGIN_START_MS;
  /** Grants since the margin last changed. */
  #clean = 0;
  /** When the margin last grew: 429s of one bunch (answered together) count once. */
  #grewAt = 0;

  /**
   * Resolves with 0 when a request may leave, at `rps` requests per second for everyone; with the
   * ms after which to ask again (nothing granted) when the line is `lineMaxS` (LINE_MAX_S) long.
   * A caller is given a planned time as it arrives (the same window over the plan: first come,
   * first served, wake-ups spread out) and sleeps until then in its own call — no timer or promise
   * of one call is left to another (in workerd those hang once the call that made them is gone).
   * Woken, it is granted only if the window of *actual* grants allows it; else it sleeps until it
   * does: a late wake-up is deferred, never bunched with the next.
   */
  async acquire(rps: number, lineMaxS = LINE_MAX_S): Promise<number> {
    this.#rps = Math.max(1, Math.floor(rps));
    let now = Date.now();
    if (this.#waiting >= this.#rps * lineMaxS) return Math.ceil((this.#waiting / this.#rps) * 1000);
    let at = now + this.#wait(this.#plan, now);
    push(this.#plan, at, this.#rps);
    this.#waiting++;
    try {
      for (;;) {
        if (at > now) {
          await new Promise((resolve) => setTimeout(resolve, at - now));
          now = Date.now();
          continue;
        }
        const wait = this.#wait(this.#grants, now);
        if (wait === 0) {
          this.#grant(now);
          return 0;
        }
        at = now + wait;
      }
    } finally {
      this.#waiting--;
    }
  }

  /** Stripe answered 429 (its rate limit): the window's margin grows. */
  async limited(): Promise<{ marginMs: number }> {
    const now = Date.now();
    if (now - this.#grewAt >= 250) {
      this.#margin = Math.min(MARGIN_MAX_MS, this.#margin + MARGIN_STEP_MS);
      this.#grewAt = now;
    }
    this.#clean = 0;
    return { marginMs: this.#margin };
  }

  /** The pacer's state (tests, operators). */
  async state(): Promise<{ marginMs: number; waiting: number; grants: number[] }> {
    return { marginMs: this.#margin, waiting: this.#waiting, grants: [...this.#grants] };
  }

  /** Milliseconds from `now` until `times` (grants or the plan) allow one more (0: now). */
  #wait(times: number[], now: number): number {
    const n = times.length;
    if (n === 0) return 0;
    let at = times[n - 1]! + 500 / this.#rps;
    if (n >= this.#rps) at = Math.max(at, times[n - this.#rps]! + 1000 + this.#margin);
    return Math.max(0, Math.ceil(at - now));
  }

  #grant(now: number) {
    push(this.#grants, now, this.#rps);
    if (++this.#clean >= this.#rps) {
      this.#clean = 0;
      this.#margin = Math.max(0, this.#margin - 1);
    }
  }
}

/** Appends `t`, keeping the last `keep` times. */
function push(times: number[], t: number, keep: number) {
  times.push(t);
  if (times.length > keep) times.splice(0, times.length - keep);
}

type LimiterEnv = { STRIPE_RATE_LIMITER?: DurableObjectNamespace<StripeRateLimiter> };

/** The gateway's hold on the service-wide limit: a slot before each request, and a 429 reported back. */
export type StripePacer = { acquire: () => Promise<void>; limited: () => Promise<void> };

/** The pacer's line is full: nothing was sent; ask again after `retryAfterMs`. */
export class PacerBusyError extends Error {
  constructor(readonly retryAfterMs: number) {
    super(`the Stripe pacer's line is full; again in ${retryAfterMs} ms`);
    this.name = "PacerBusyError";
  }
}

/** How long a caller waits for the pacer's answer past its longest line before asking again later. */
export const PACER_ANSWER_GRACE_MS = 5_000;

/**
 * The pacer of the service-wide limit (no limiter bound: no wait). The wait for its answer is
 * bounded (`answerWithinMs`: its longest line and a grace): a pacer that never answers (stalled,
 * or its machine gone) makes the caller's request a PacerBusyError — nothing sent, the outbox
 * item retried later — instead of holding the office's Stripe work. The timer is the caller's
 * own, made and cleared in this call.
 */
export function stripePacer(env: LimiterEnv, rps: number, name = "stripe", answerWithinMs = LINE_MAX_S * 1000 + PACER_ANSWER_GRACE_MS): StripePacer {
  const stub = () => env.STRIPE_RATE_LIMITER!.get(env.STRIPE_RATE_LIMITER!.idFromName(name));
  return {
    acquire: async () => {
      if (!env.STRIPE_RATE_LIMITER) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<number>((resolve) => {
        timer = setTimeout(() => resolve(PACER_ANSWER_GRACE_MS), answerWithinMs);
      });
      try {
        const back = await Promise.race([stub().acquire(rps), late]);
        if (back > 0) throw new PacerBusyError(back);
      } finally {
        clearTimeout(timer);
      }
    },
    limited: async () => {
      if (env.STRIPE_RATE_LIMITER) await stub().limited();
    },
  };
}
