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
 * 1,000 ms + margin, and two grants at least half a spacing apart (no bursts). Callers wait in
 * line (first come, first served) until granted; a late timer is caught up within the window, so
 * a slow wake-up costs no slot. Requests are never refused, only paced. The window lives in
 * memory: after an eviction the next grant is at once (at worst one short burst; Stripe's 429 is retried).
 */
export class StripeRateLimiter extends DurableObject {
  /** The last `rps` grant times (ms), oldest first. */
  #grants: number[] = [];
  #waiting: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #rps = 100;
  #margin = MARGIN_START_MS;
  /** Grants since the margin last changed. */
  #clean = 0;
  /** When the margin last grew: 429s of one bunch (answered together) count once. */
  #grewAt = 0;

  /**
   * Resolves with 0 when a request may leave, at `rps` requests per second for everyone; with the
   * ms after which to ask again (nothing granted) when the line is `lineMaxS` (LINE_MAX_S) long.
   */
  async acquire(rps: number, lineMaxS = LINE_MAX_S): Promise<number> {
    this.#rps = Math.max(1, Math.floor(rps));
    const now = Date.now();
    if (this.#waiting.length === 0 && this.#wait(now) === 0) {
      this.#grant(now);
      return 0;
    }
    if (this.#waiting.length >= this.#rps * lineMaxS) return Math.ceil((this.#waiting.length / this.#rps) * 1000);
    await new Promise<void>((resolve) => {
      this.#waiting.push(resolve);
      this.#pump();
    });
    return 0;
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
    return { marginMs: this.#margin, waiting: this.#waiting.length, grants: [...this.#grants] };
  }

  /** Milliseconds until the next grant is allowed (0: now). */
  #wait(now: number): number {
    const g = this.#grants;
    const n = g.length;
    if (n === 0) return 0;
    let at = g[n - 1]! + 500 / this.#rps;
    if (n >= this.#rps) at = Math.max(at, g[n - this.#rps]! + 1000 + this.#margin);
    return Math.max(0, Math.ceil(at - now));
  }

  #grant(now: number) {
    this.#grants.push(now);
    if (this.#grants.length > this.#rps) this.#grants.splice(0, this.#grants.length - this.#rps);
    if (++this.#clean >= this.#rps) {
      this.#clean = 0;
      this.#margin = Math.max(0, this.#margin - 1);
    }
  }

  /** Grants the waiting callers in order, each when the window allows. */
  #pump() {
    if (this.#timer !== null) return;
    const run = () => {
      this.#timer = null;
      const now = Date.now();
      while (this.#waiting.length > 0) {
        const wait = this.#wait(now);
        if (wait > 0) {
          this.#timer = setTimeout(run, wait);
          return;
        }
        this.#grant(now);
        this.#waiting.shift()!();
      }
    };
    this.#timer = setTimeout(run, this.#wait(Date.now()));
  }
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

/** The pacer of the service-wide limit (no limiter bound: no wait). */
export function stripePacer(env: LimiterEnv, rps: number, name = "stripe"): StripePacer {
  const stub = () => env.STRIPE_RATE_LIMITER!.get(env.STRIPE_RATE_LIMITER!.idFromName(name));
  return {
    acquire: async () => {
      if (!env.STRIPE_RATE_LIMITER) return;
      const back = await stub().acquire(rps);
      if (back > 0) throw new PacerBusyError(back);
    },
    limited: async () => {
      if (env.STRIPE_RATE_LIMITER) await stub().limited();
    },
  };
}
