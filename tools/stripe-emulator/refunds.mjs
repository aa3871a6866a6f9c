// Refunds: POST /v1/refunds (against a charge or a payment intent), GET /v1/refunds/:id,
// GET /v1/refunds (by charge or payment intent).
//
// Refunds are asynchronous as in Stripe's test mode (docs: testing, "Simulate an asynchronous
// refund"): a refund of a charge made with the test card 4000000000007726 (`pm_card_pendingRefund`)
// begins `pending` and turns `succeeded` some time later (`refund.updated`); one of a charge made
// with 4000000000005126 (`pm_card_refundFail`) begins `succeeded` and turns `failed` later
// (`failure_reason: expired_or_canceled_card`, `refund.updated` and `refund.failed`; the charge's
// `amount_refunded` goes back down). With every other card a refund succeeds at once and never
// changes. "Some time later" is `refundSettleDelayMs` of the emulator's clock (default 30 s; an
// advance of the clock settles it at once). Creating a refund emits `refund.created` and
// `charge.refunded`, as Stripe does.
import { HASH, LEAF, NOT, PAGINATION, clone, expansions, invalid, invalidParam, mergeMetadata, missing, newId, notFound, page, toInt } from "./common.mjs";

/** RefundCreateParams of the pinned SDK. */
const CREATE = {
  amount: LEAF,
  charge: LEAF,
  currency: NOT,
  customer: NOT,
  expand: [LEAF],
  instructions_email: NOT,
  metadata: HASH,
  origin: NOT,
  payment_intent: LEAF,
  reason: LEAF,
  refund_application_fee: NOT,
  reverse_transfer: NOT,
};
/** RefundListParams of the pinned SDK. */
const LIST = { charge: LEAF, created: NOT, expand: [LEAF], payment_intent: LEAF, ...PAGINATION };
const REASONS = ["duplicate", "fraudulent", "requested_by_customer"];

/** The asynchronous refund test cards, by the last four digits of the card the charge was made with. */
export const ASYNC_REFUND_CARDS = {
  7726: "pending_then_succeeded", // 4000000000007726, pm_card_pendingRefund
  5126: "succeeded_then_failed", // 4000000000005126, pm_card_refundFail
};
export const DEFAULT_REFUND_SETTLE_DELAY_MS = 30_000;

export function registerRefunds(app) {
  const { route, state, clock, emit } = app;
  /** Settlements scheduled on the clock, by refund id (dropped on reset). */
  const settling = new Map();

  const behaviourOf = (charge) => ASYNC_REFUND_CARDS[charge.payment_method_details?.card?.last4] ?? null;

  /** Writes a refund's new state into the store and the charge's own list. */
  function save(refund) {
    state.refunds.set(refund.id, refund);
    const charge = state.charges.get(refund.charge);
    if (charge?.refunds?.data) charge.refunds.data = charge.refunds.data.map((r) => (r.id === refund.id ? clone(refund) : r));
    app.changed();
  }

  function settle(refundId) {
    settling.delete(refundId);
    const refund = state.refunds.get(refundId);
    const charge = refund && state.charges.get(refund.charge);
    if (!refund || !charge) return;
    const behaviour = behaviourOf(charge);
    const previous = { status: refund.status };
    if (behaviour === "pending_then_succeeded" && refund.status === "pending") {
      refund.status = "succeeded";
      delete refund.pending_reason;
      save(refund);
      emit("refund.updated", refund, null, { previous_attributes: { ...previous, pending_reason: "processing" } });
    } else if (behaviour === "succeeded_then_failed" && refund.status === "succeeded") {
      refund.status = "failed";
      refund.failure_reason = "expired_or_canceled_card";
      refund.failure_balance_transaction = newId("txn");
      // The refunded money comes back to the account: the charge no longer counts it.
      charge.amount_refunded = Math.max(0, charge.amount_refunded - refund.amount);
      charge.refunded = charge.amount_refunded >= charge.amount;
      save(refund);
      emit("refund.updated", refund, null, { previous_attributes: previous });
      emit("refund.failed", refund, null, { previous_attributes: previous });
    }
  }

  function schedule(refund) {
    const delay = app.refundSettleDelayMs ?? DEFAULT_REFUND_SETTLE_DELAY_MS;
    settling.set(refund.id, clock.after(delay, () => settle(refund.id)));
  }

  /** Makes a refund of a charge (validated by the caller), emits its events, returns it. */
  function createRefund(charge, amount, { reason = null, metadata } = {}, ctx) {
    const behaviour = behaviourOf(charge);
    const refund = {
      id: newId("re"),
      object: "refund",
      amount,
      balance_transaction: newId("txn"),
      charge: charge.id,
      created: clock.now(),
      currency: charge.currency,
      destination_details: { card: { reference_status: "pending", reference_type: "acquirer_reference_number", type: "refund" }, type: "card" },
      metadata: mergeMetadata({}, metadata),
      payment_intent: charge.payment_intent,
      ...(behaviour === "pending_then_succeeded" ? { pending_reason: "processing" } : {}),
      reason,
      receipt_number: null,
      source_transfer_reversal: null,
      status: behaviour === "pending_then_succeeded" ? "pending" : "succeeded",
      transfer_reversal: null,
    };
    state.refunds.set(refund.id, refund);
    // A pending refund counts on the charge too (Stripe: `amount_refunded` includes it).
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded >= charge.amount;
    charge.refunds.data.unshift(clone(refund));
    emit("refund.created", refund, ctx);
    emit("charge.refunded", app.payments.publicCharge(charge), ctx);
    if (behaviour) schedule(refund);
    return refund;
  }

  route("POST", "/v1/refunds", CREATE, (p, _params, ctx) => {
    expansions(p);
    let charge;
    if (p.charge) {
      charge = state.charges.get(p.charge);
      if (!charge) throw notFound("charge", p.charge, "charge");
    } else if (p.payment_intent) {
      const chId = state.paymentIntents.get(p.payment_intent);
      if (!chId) throw notFound("payment_intent", p.payment_intent, "payment_intent");
      charge = state.charges.get(chId);
    } else throw missing("charge");
    if (p.reason !== undefined && !REASONS.includes(p.reason)) {
      throw invalid(`Invalid reason: must be one of ${REASONS.join(", ")}`, { param: "reason" }, { store: false });
    }
    if (charge.status !== "succeeded") {
      throw invalid(`Charge ${charge.id} has not succeeded and cannot be refunded.`, { code: "charge_not_refundable", param: "charge" });
    }
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) {
      throw invalid(`Charge ${charge.id} has already been refunded.`, { code: "charge_already_refunded", param: "charge" });
    }
    const amount = toInt(p.amount, "amount") ?? remaining;
    if (amount <= 0) throw invalid("Refund amount must be positive.", { code: "parameter_invalid_integer", param: "amount" });
    if (amount > remaining) {
      throw invalid(`Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`, { code: "amount_too_large", param: "amount" });
    }
    return clone(createRefund(charge, amount, { reason: p.reason ?? null, metadata: p.metadata }, ctx));
  });
  route("GET", "/v1/refunds/:id", { expand: [LEAF] }, (p, { id }) => {
    expansions(p);
    const r = state.refunds.get(id);
    if (!r) throw notFound("refund", id);
    return clone(r);
  });
  route("GET", "/v1/refunds", LIST, (p) => {
    expansions(p);
    let items = [...state.refunds.values()].sort((a, b) => a.created - b.created);
    if (p.charge) items = items.filter((r) => r.charge === p.charge);
    if (p.payment_intent) items = items.filter((r) => r.payment_intent === p.payment_intent);
    if (p.charge && p.payment_intent) throw invalidParam("You may only specify one of these parameters: charge, payment_intent.", "charge");
    return page(items.map(clone), p, "/v1/refunds");
  });

  return {
    createRefund,
    /** Refunds still to settle after a restart (the state file keeps them; the clock resumes them). */
    resume() {
      for (const r of state.refunds.values()) {
        const charge = state.charges.get(r.charge);
        const behaviour = charge ? behaviourOf(charge) : null;
        // Each still has its change ahead: pending ones succeed, succeeded ones (of the failing card) fail.
        if ((behaviour === "pending_then_succeeded" && r.status === "pending") || (behaviour === "succeeded_then_failed" && r.status === "succeeded")) schedule(r);
      }
    },
    clearPending() {
      for (const t of settling.values()) clock.cancel(t);
      settling.clear();
    },
  };
}
