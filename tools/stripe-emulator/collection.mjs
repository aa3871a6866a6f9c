// Automatic collection of finalized invoices on the emulator's clock: the attempt some time after
// finalize, its outcome (paid, declined, no payment method) and the retries of a declined one
// (retries.mjs), each a task on the clock.
import { nextRetryDelayS } from "./retries.mjs";

/**
 * @param app { state, clock, emit, payments: { attemptPayment }, paymentDelayMs, retryDelaysS, afterRetries, changed }
 * @param publicInvoice (inv) => the invoice as the API shows it (for events)
 */
export function createCollection(app, publicInvoice) {
  const { clock, emit } = app;
  /** Pending automatic attempts: invoice id → clock task (not state: rescheduled after a restart). */
  const pendingAttempts = new Map();

  function markPaid(inv, ctx) {
    inv.status = "paid";
    inv.amount_paid = inv.amount_due;
    inv.amount_remaining = 0;
    inv.status_transitions.paid_at = clock.now();
    inv.next_payment_attempt = null;
    emit("invoice.paid", publicInvoice(inv), ctx);
    emit("invoice.payment_succeeded", publicInvoice(inv), ctx);
  }

  /**
   * One payment attempt of an open invoice. Paid: invoice.paid. Failed: invoice.payment_failed with
   * `attempt_count` and `next_payment_attempt`: after a decline, the next retry of the schedule
   * (retries.mjs), when automatic collection is on; none without a payment method (Stripe does not
   * retry when no payment method is available) or after the last retry (then `afterRetries`).
   */
  function attempt(inv, ctx) {
    const result = app.payments.attemptPayment(inv, ctx);
    if (result.outcome === "paid") {
      markPaid(inv, ctx);
      return result;
    }
    const automatic = inv.collection_method === "charge_automatically" && inv.auto_advance;
    const delayS = result.outcome === "declined" && automatic ? nextRetryDelayS(app.retryDelaysS, inv.attempt_count) : null;
    inv.next_payment_attempt = delayS === null ? null : clock.now() + delayS;
    emit("invoice.payment_failed", publicInvoice(inv), ctx);
    if (delayS !== null) scheduleAttempt(inv, delayS * 1000);
    else if (result.outcome === "declined" && automatic && app.afterRetries === "mark_uncollectible") {
      inv.status = "uncollectible";
      inv.status_transitions.marked_uncollectible_at = clock.now();
      emit("invoice.marked_uncollectible", publicInvoice(inv), ctx);
    }
    return result;
  }

  function cancelAttempt(inv) {
    const task = pendingAttempts.get(inv.id);
    if (task) clock.cancel(task);
    pendingAttempts.delete(inv.id);
  }

  /** An automatic attempt `delayMs` of the clock from now, made only if nothing happened to the invoice meanwhile. */
  function scheduleAttempt(inv, delayMs, resumed = false) {
    cancelAttempt(inv);
    const count = inv.attempt_count;
    pendingAttempts.set(
      inv.id,
      clock.after(delayMs, () => {
        pendingAttempts.delete(inv.id);
        if (inv.status === "open" && inv.attempt_count === count) attempt(inv, { requestId: null, idempotencyKey: null, resumed });
        app.changed();
      }),
    );
  }

  /** The automatic payment attempt after finalize, `paymentDelayMs` of the clock later (also resumed after a restart). */
  function schedulePayment(inv, resumed = false) {
    const delay = typeof app.paymentDelayMs === "function" ? app.paymentDelayMs() : app.paymentDelayMs;
    scheduleAttempt(inv, delay, resumed);
  }

  /** A retry due at `next_payment_attempt` (resumed after a restart). */
  function scheduleRetry(inv) {
    scheduleAttempt(inv, Math.max(0, inv.next_payment_attempt * 1000 - clock.nowMs()), true);
  }

  /** Drops pending automatic attempts (reset). */
  function clearPending() {
    for (const task of pendingAttempts.values()) clock.cancel(task);
    pendingAttempts.clear();
  }

  return { markPaid, attempt, cancelAttempt, schedulePayment, scheduleRetry, clearPending };
}
