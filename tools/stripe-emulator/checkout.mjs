// Checkout Sessions in setup mode (POST /v1/checkout/sessions, GET /v1/checkout/sessions/:id), their
// SetupIntents (GET /v1/setup_intents/:id), and what a customer finishing the hosted page does
// (`complete`, driven by the control endpoint POST /_emulator/checkout/sessions/:id/complete).
// Only `mode=setup` is emulated: the session collects a payment method for later, with no charge.
// Completing it (Stripe's docs, "Set up future payments"): the SetupIntent succeeds with the payment
// method, the payment method is attached to the session's customer (`payment_method.attached`),
// then `setup_intent.succeeded` and `checkout.session.completed`. It does NOT set the customer's
// `invoice_settings.default_payment_method`: the integration does that itself.
import { HASH, LEAF, NOT, clone, expansions, invalid, invalidParam, missing, newId, notFound } from "./common.mjs";

/** The top-level Checkout.SessionCreateParams of the pinned SDK: what is emulated, what is not. */
const CREATE = Object.fromEntries(
  "adaptive_pricing after_expiration allow_promotion_codes automatic_tax billing_address_collection branding_settings client_reference_id consent_collection custom_fields custom_text customer_account customer_creation customer_email customer_update discounts excluded_payment_method_types invoice_creation line_items locale name_collection optional_items origin_context payment_intent_data payment_method_collection payment_method_configuration payment_method_data payment_method_options permissions phone_number_collection redirect_on_completion return_url saved_payment_method_options shipping_address_collection shipping_options submit_type subscription_data tax_id_collection ui_mode wallet_options"
    .split(" ")
    .map((k) => [k, NOT]),
);
Object.assign(CREATE, { cancel_url: LEAF, currency: LEAF, customer: LEAF, expand: [LEAF], expires_at: LEAF, metadata: HASH, mode: LEAF, payment_method_types: [LEAF], setup_intent_data: { description: LEAF, metadata: HASH, on_behalf_of: NOT }, success_url: LEAF });

/** A session is open for 24 hours unless `expires_at` says otherwise (30 min .. 24 h). */
const DEFAULT_TTL_S = 24 * 3600;

export function registerCheckout(app) {
  const { route, state, clock, emit } = app;

  function makeSetupIntent(session, p) {
    return {
      id: newId("seti"),
      object: "setup_intent",
      application: null,
      automatic_payment_methods: null,
      cancellation_reason: null,
      client_secret: null,
      created: clock.now(),
      customer: session.customer,
      customer_account: null,
      description: p.setup_intent_data?.description ?? null,
      excluded_payment_method_types: null,
      flow_directions: null,
      last_setup_error: null,
      latest_attempt: null,
      livemode: false,
      mandate: null,
      metadata: { ...(p.setup_intent_data?.metadata ?? {}) },
      next_action: null,
      on_behalf_of: null,
      payment_method: null,
      payment_method_configuration_details: null,
      payment_method_options: { card: { mandate_options: null, network: null, request_three_d_secure: "automatic" } },
      payment_method_types: session.payment_method_types,
      single_use_mandate: null,
      status: "requires_payment_method",
      usage: "off_session",
    };
  }

  function makeSession(p) {
    const id = `cs_test_${newId("x").slice(2)}`;
    const t = clock.now();
    const expiresAt = p.expires_at === undefined ? t + DEFAULT_TTL_S : Number(p.expires_at);
    if (!Number.isInteger(expiresAt) || expiresAt < t + 1800 || expiresAt > t + DEFAULT_TTL_S) {
      throw invalidParam("The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.", "expires_at");
    }
    const types = p.payment_method_types === undefined ? ["card"] : Array.isArray(p.payment_method_types) ? p.payment_method_types : [p.payment_method_types];
    return {
      id,
      object: "checkout.session",
      adaptive_pricing: null,
      after_expiration: null,
      allow_promotion_codes: null,
      amount_subtotal: null,
      amount_total: null,
      automatic_tax: { enabled: false, liability: null, provider: null, status: null },
      billing_address_collection: null,
      cancel_url: p.cancel_url ?? null,
      client_reference_id: null,
      client_secret: null,
      collected_information: null,
      consent: null,
      consent_collection: null,
      created: t,
      currency: p.currency ? String(p.currency).toLowerCase() : null,
      currency_conversion: null,
      custom_fields: [],
      custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
      customer: p.customer ?? null,
      customer_account: null,
      customer_creation: null,
      customer_details: null,
      customer_email: null,
      discounts: null,
      expires_at: expiresAt,
      invoice: null,
      invoice_creation: null,
      livemode: false,
      locale: null,
      metadata: { ...(p.metadata ?? {}) },
      mode: "setup",
      origin_context: null,
      payment_intent: null,
      payment_link: null,
      payment_method_collection: "always",
      payment_method_configuration_details: null,
      payment_method_options: {},
      payment_method_types: types,
      payment_status: "no_payment_required",
      permissions: null,
      phone_number_collection: { enabled: false },
      recovered_from: null,
      saved_payment_method_options: null,
      setup_intent: null,
      shipping_address_collection: null,
      shipping_cost: null,
      shipping_options: [],
      status: "open",
      submit_type: null,
      subscription: null,
      success_url: p.success_url ?? null,
      total_details: null,
      ui_mode: "hosted",
      url: `${app.base.url}/checkout/${id}`,
      wallet_options: null,
    };
  }

  const getSession = (id) => {
    const s = state.checkoutSessions.get(id);
    if (!s) throw notFound("checkout.session", id, "session");
    // An open session past its `expires_at` is expired (Stripe also emits checkout.session.expired).
    if (s.status === "open" && s.expires_at <= clock.now()) {
      s.status = "expired";
      s.url = null;
      emit("checkout.session.expired", s, null);
    }
    return s;
  };

  route("POST", "/v1/checkout/sessions", CREATE, (p) => {
    expansions(p);
    if (p.mode === undefined) throw missing("mode");
    if (p.mode !== "setup") throw invalidParam("The emulator only emulates Checkout Sessions with `mode=setup`.", "mode", { code: "parameter_not_emulated" });
    if (p.currency === undefined && p.payment_method_types === undefined) {
      throw invalidParam("You must provide `currency` in `setup` mode when `payment_method_types` is not set.", "currency", { code: "parameter_missing" });
    }
    if (p.currency !== undefined && !/^[a-z]{3}$/i.test(String(p.currency))) throw invalidParam(`Invalid currency: ${p.currency}`, "currency");
    if (p.success_url === undefined) throw missing("success_url");
    for (const k of ["success_url", "cancel_url"]) {
      if (p[k] !== undefined && !/^https?:\/\/\S+$/.test(String(p[k]))) throw invalidParam(`Not a valid URL`, k, { code: "url_invalid" });
    }
    if (p.customer !== undefined) app.getCustomer(p.customer);
    const session = makeSession(p);
    const si = makeSetupIntent(session, p);
    session.setup_intent = si.id;
    state.setupIntents.set(si.id, si);
    state.checkoutSessions.set(session.id, session);
    return clone(session);
  });
  route("GET", "/v1/checkout/sessions/:id", { expand: [LEAF] }, (p, { id }) => (expansions(p), clone(getSession(id))));
  route("GET", "/v1/setup_intents/:id", { client_secret: NOT, expand: [LEAF] }, (p, { id }) => {
    expansions(p);
    const si = state.setupIntents.get(id);
    if (!si) throw notFound("setup_intent", id, "intent");
    return clone(si);
  });

  /**
   * What the customer's successful visit to the hosted page does: the payment method (a test
   * token such as `pm_card_visa`) is set up and attached, then the events Stripe sends.
   */
  function complete(sessionId, paymentMethod = "pm_card_visa") {
    const session = getSession(sessionId);
    if (session.status !== "open") throw invalid(`This Checkout Session is ${session.status}.`, { code: "checkout_session_not_open" });
    if (!session.customer) throw invalid("The emulator completes only sessions made for an existing customer.");
    const si = state.setupIntents.get(session.setup_intent);
    const pm = app.paymentMethods.attachToken(paymentMethod, session.customer, null);
    si.payment_method = pm.id;
    si.status = "succeeded";
    si.latest_attempt = newId("setatt");
    session.status = "complete";
    session.url = null;
    const customer = state.customers.get(session.customer);
    session.customer_details = { address: customer.address, business_name: null, email: customer.email, individual_name: null, name: customer.name, phone: null, tax_exempt: customer.tax_exempt, tax_ids: [] };
    emit("setup_intent.succeeded", si, null);
    emit("checkout.session.completed", session, null);
    app.changed();
    return { session: clone(session), setup_intent: clone(si), payment_method: pm };
  }

  return { complete };
}
