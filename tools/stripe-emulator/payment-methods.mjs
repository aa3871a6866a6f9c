// Payment methods: POST /v1/payment_methods/:id/attach (Stripe's test card tokens such as
// `pm_card_visa`, or a payment method made that way earlier), POST /v1/payment_methods/:id/detach,
// GET /v1/payment_methods/:id. Attaching a test token makes a new card payment method (its own
// `pm_` id), as Stripe does; events `payment_method.attached` / `payment_method.detached` (a
// detached default also clears the customer's `invoice_settings.default_payment_method`,
// `customer.updated`).
import { LEAF, NOT, clone, expansions, invalid, missing, newId, notFound } from "./common.mjs";

/** PaymentMethodAttachParams of the pinned SDK. */
const ATTACH = { customer: LEAF, customer_account: NOT, expand: [LEAF] };

/** Stripe's test payment method tokens the emulator knows (docs: testing, "Cards by brand"). */
const TEST_CARDS = {
  pm_card_visa: { brand: "visa", last4: "4242", funding: "credit" },
  pm_card_mastercard: { brand: "mastercard", last4: "4444", funding: "credit" },
  pm_card_amex: { brand: "amex", last4: "0005", funding: "credit" },
  // "Simulate an asynchronous refund": refunds of these cards' charges change status later (refunds.mjs).
  pm_card_pendingRefund: { brand: "visa", last4: "7726", funding: "credit" },
  pm_card_refundFail: { brand: "visa", last4: "5126", funding: "credit" },
  // 4000 0000 0000 0341: "Attaching this card to a Customer object succeeds, but attempts to charge the customer fail."
  pm_card_chargeCustomerFail: { brand: "visa", last4: "0341", funding: "credit", chargeFails: true },
};

/** Whether charging this payment method fails (card_declined), as Stripe's test card says. */
export const chargeFails = (pm) => pm?.card?.last4 === "0341" && pm.card.brand === "visa";

export function registerPaymentMethods(app) {
  const { route, state, clock } = app;

  function fromTestToken(token) {
    const card = TEST_CARDS[token];
    const expYear = new Date(clock.now() * 1000).getUTCFullYear() + 1;
    return {
      id: newId("pm"),
      object: "payment_method",
      allow_redisplay: "unspecified",
      billing_details: { address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null }, email: null, name: null, phone: null, tax_id: null },
      card: {
        brand: card.brand,
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: "unchecked" },
        country: "US",
        display_brand: card.brand,
        exp_month: 12,
        exp_year: expYear,
        funding: card.funding,
        generated_from: null,
        last4: card.last4,
        networks: { available: [card.brand], preferred: null },
        regulated_status: "unregulated",
        three_d_secure_usage: { supported: true },
        wallet: null,
      },
      created: clock.now(),
      customer: null,
      customer_account: null,
      livemode: false,
      metadata: {},
      type: "card",
    };
  }

  /** Attaches a payment method (or a new one from a test token) to a customer; emits payment_method.attached. */
  function attachToken(id, customerId, ctx) {
    const customer = app.getCustomer(customerId);
    let pm = state.paymentMethods.get(id);
    if (!pm) {
      if (!Object.hasOwn(TEST_CARDS, id)) throw notFound("PaymentMethod", id, "payment_method");
      pm = fromTestToken(id);
      state.paymentMethods.set(pm.id, pm);
    } else if (pm.customer && pm.customer !== customer.id) {
      throw invalid("The payment method you provided has already been attached to a customer.", { code: "payment_method_unexpected_state", param: "payment_method" });
    }
    const was = pm.customer;
    pm.customer = customer.id;
    if (was !== customer.id) app.emit("payment_method.attached", pm, ctx);
    return clone(pm);
  }

  route("POST", "/v1/payment_methods/:id/attach", ATTACH, (p, { id }, ctx) => {
    expansions(p);
    if (!p.customer) throw missing("customer");
    return attachToken(id, p.customer, ctx);
  });
  route("POST", "/v1/payment_methods/:id/detach", { expand: [LEAF] }, (p, { id }, ctx) => {
    expansions(p);
    const pm = state.paymentMethods.get(id);
    if (!pm) throw notFound("PaymentMethod", id, "payment_method");
    if (!pm.customer) throw invalid("The payment method you provided is not attached to a customer so detachment is impossible.", { code: "payment_method_unexpected_state" });
    const customer = state.customers.get(pm.customer);
    pm.customer = null;
    app.emit("payment_method.detached", pm, ctx, { previous_attributes: { customer: customer?.id ?? null } });
    if (customer?.invoice_settings.default_payment_method === pm.id) {
      const previous = { invoice_settings: clone(customer.invoice_settings) };
      customer.invoice_settings = { ...customer.invoice_settings, default_payment_method: null };
      app.emit("customer.updated", customer, ctx, { previous_attributes: previous });
    }
    return clone(pm);
  });
  route("GET", "/v1/payment_methods/:id", { expand: [LEAF] }, (p, { id }) => {
    expansions(p);
    const pm = state.paymentMethods.get(id);
    if (!pm) throw notFound("PaymentMethod", id, "payment_method");
    return clone(pm);
  });
  return { attachToken };
}
