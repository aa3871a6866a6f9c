// Automatic retries of a declined invoice payment, on the emulator's clock. Stripe's Smart Retries
// pick their times by machine learning within the account's setting (default for one-time
// invoices in the Dashboard: up to 4 retries within 2 weeks); the emulator models that with a
// fixed, configurable schedule. Stripe does not retry when no payment method is available.

/** Delays (s) of each retry after the previous attempt: retries 3, 5, 7 and 14 days after the first failure. */
export const DEFAULT_RETRY_DELAYS_S = [3 * 86400, 2 * 86400, 2 * 86400, 7 * 86400];

/** What happens to the invoice after the last retry fails: left `open` (past due), or marked `uncollectible`. */
export const AFTER_RETRIES = ["leave_open", "mark_uncollectible"];

/** The delay (s) before the retry that follows attempt number `attemptCount` (1 = the first attempt), or null: no more. */
export function nextRetryDelayS(delays, attemptCount) {
  const d = delays[attemptCount - 1];
  return d === undefined ? null : d;
}
