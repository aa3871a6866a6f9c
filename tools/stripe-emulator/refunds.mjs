// Refunds: POST /v1/refunds (against a charge or a payment intent), GET /v1/refunds/:id.
import { HASH, LEAF, NOT, clone, expansions, invalid, mergeMetadata, missing, newId, notFound, toInt } from "./common.mjs";

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
const REASONS = ["duplicate", "fraudulent", "requested_by_customer"];

export function registerRefunds(app) {
  const { route, state, clock, emit } = app;

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
    const refund = {
      id: newId("re"),
      object: "refund",
      amount,
      balance_transaction: newId("txn"),
      charge: charge.id,
      created: clock.now(),
      currency: charge.currency,
      customer: charge.customer,
      customer_account: null,
      destination_details: { card: { type: "refund" }, type: "card" },
      metadata: mergeMetadata({}, p.metadata),
      payment_intent: charge.payment_intent,
      payment_method: charge.payment_method,
      reason: p.reason ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: "succeeded",
      transfer_reversal: null,
    };
    state.refunds.set(refund.id, refund);
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded >= charge.amount;
    charge.refunds.data.unshift(clone(refund));
    emit("charge.refunded", app.payments.publicCharge(charge), ctx);
    return clone(refund);
  });
  route("GET", "/v1/refunds/:id", { expand: [LEAF] }, (p, { id }) => {
    expansions(p);
    const r = state.refunds.get(id);
    if (!r) throw notFound("refund", id);
    return clone(r);
  });
}
