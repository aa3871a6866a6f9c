import { DurableObject } from "cloudflare:workers";

/**
 * The service-wide Stripe rate limit: one instance (`idFromName("stripe")`) hands out start times
 * for Stripe requests, evenly spaced at `1000 / rps` ms, so all office objects together stay under
 * Stripe's limit (live 100/s, test 25/s; `STRIPE_MAX_RPS`). A caller reserves a slot and waits for
 * it; requests are never refused, only paced. The schedule lives in memory: after an eviction the
 * next slot is "now", which at worst lets one short burst through (Stripe's 429 is retried).
 */
export class StripeRateLimiter extends DurableObject {
  #next = 0;

  /** Reserves the next start slot at `rps` requests per second; returns how long to wait (ms). */
  async reserve(rps: number): Promise<number> {
    const now = Date.now();
    const slot = Math.max(now, this.#next);
    this.#next = slot + 1000 / Math.max(1, rps);
    return Math.max(0, Math.ceil(slot - now));
  }
}

type LimiterEnv = { STRIPE_RATE_LIMITER?: DurableObjectNamespace<StripeRateLimiter> };

/** Waits for a slot under the service-wide limit (no limiter bound: no wait). */
export function stripeSlot(env: LimiterEnv, rps: number): () => Promise<void> {
  return async () => {
    if (!env.STRIPE_RATE_LIMITER) return;
    const stub = env.STRIPE_RATE_LIMITER.get(env.STRIPE_RATE_LIMITER.idFromName("stripe"));
    const wait = await stub.reserve(rps);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
}
