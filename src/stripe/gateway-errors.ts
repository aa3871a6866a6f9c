import type { StripeOperation } from "./payloads";

// Stripe's failures as the gateway reports them: retryable or not, and the backoff between attempts.

/**
 * A Stripe call that failed after its attempts. `retryable` says whether trying again later can
 * succeed (429, 5xx, timeouts, or Stripe's `Stripe-Should-Retry: true`): the office outbox then
 * schedules it; otherwise Stripe refused the request for good (`code` is Stripe's error code).
 */
export class StripeCallError extends Error {
  constructor(
    readonly operation: StripeOperation,
    readonly retryable: boolean,
    readonly code: string,
    readonly httpStatus: number | null,
    /** When to try again, if the refusal said (the pacer's full line), epoch ms. */
    readonly retryAt: number | null = null,
  ) {
    super(`Stripe ${operation} failed (${httpStatus ?? "no answer"}, ${code})${retryable ? "; it will be retried" : ""}`);
    this.name = "StripeCallError";
  }
}

export type StripeErrorLike = { statusCode?: number; code?: string; type?: string; raw?: { type?: string }; headers?: Record<string, string> };

/** Whether a failed Stripe request may succeed when repeated with the same idempotency key. */
export function isRetryable(error: StripeErrorLike): boolean {
  const should = error.headers?.["stripe-should-retry"];
  if (should === "true") return true;
  if (should === "false") return false;
  const status = error.statusCode;
  if (status === undefined) return true; // no answer: connection error or timeout
  // Our key was revoked or lacks a permission: nothing to give up on, an operator fixes it (alerted).
  if (status === 401 || status === 403) return true;
  // 429: a rate limit, or `lock_timeout` (another request or Stripe process holds the object:
  // Stripe documents it as safe to retry). 409: an idempotent request with our key still in flight.
  return status === 429 || status === 409 || status >= 500;
}

/** How long Stripe keeps an idempotency key: a repeat after that makes a new object. */
export const STRIPE_KEY_MEMORY_MS = 24 * 3_600_000;
/**
 * A create whose key was first used this long ago (by our request log) looks its object up at
 * Stripe before it is sent again: an hour short of Stripe's 24, so a key about to be pruned never
 * decides it, and long after Stripe's search has indexed whatever the first attempt made.
 */
export const LOOKUP_AFTER_MS = STRIPE_KEY_MEMORY_MS - 3_600_000;

/** Exponential backoff with full jitter: a random wait in [base·2^(n−1) / 2, base·2^(n−1)]. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
