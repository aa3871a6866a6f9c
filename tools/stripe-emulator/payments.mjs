// Payments of invoices: charges (GET /v1/charges/:id), payment intents (ids only, referenced by
// charges, refunds and invoice payments) and invoice payments (GET /v1/invoice_payments,
// GET /v1/invoice_payments/:id). An attempt on an invoice makes one of each.
import { LEAF, NOT, PAGINATION, clone, expansions, invalidParam, listOf, newId, notFound, nullAddress, page } from "./common.mjs";
import { chargeFails } from "./payment-methods.mjs";

/** Charge fields earlier emulator versions kept that the pinned version does not have. */
const NOT_CHARGE_FIELDS = ["invoice"];

export function registerPayments(app) {
  const { route, state, clock } = app;

  function makeCharge({ amount, currency, customer, invoice, paymentIntent, failed, pm }) {
    const id = newId("ch");
    return {
      id,
      object: "charge",
      amount,
      amount_captured: failed ? 0 : amount,
      amount_refunded: 0,
      application: null,
      application_fee: null,
      application_fee_amount: null,
      balance_transaction: failed ? null : newId("txn"),
      billing_details: { address: nullAddress(), email: customer.email, name: customer.name, phone: null, tax_id: null },
      calculated_statement_descriptor: "EMULATOR",
      captured: !failed,
      created: clock.now(),
      currency,
      customer: customer.id,
      description: invoice ? `Payment for Invoice` : null,
      disputed: false,
      failure_balance_transaction: null,
      failure_code: failed ? "card_declined" : null,
      failure_message: failed ? "Your card was declined." : null,
      fraud_details: {},
      livemode: false,
      metadata: {},
      on_behalf_of: null,
      outcome: failed
        ? { advice_code: null, network_advice_code: null, network_decline_code: null, network_status: "declined_by_network", reason: "generic_decline", risk_level: "normal", seller_message: "The bank did not return any further details with this decline.", type: "issuer_declined" }
        : { advice_code: null, network_advice_code: null, network_decline_code: null, network_status: "approved_by_network", reason: null, risk_level: "normal", seller_message: "Payment complete.", type: "authorized" },
      paid: !failed,
      payment_intent: paymentIntent,
      payment_method: pm?.id ?? newId("pm"),
      payment_method_details: {
        card: pm?.card
          ? { brand: pm.card.brand, country: pm.card.country, exp_month: pm.card.exp_month, exp_year: pm.card.exp_year, funding: pm.card.funding, last4: pm.card.last4, network: pm.card.brand }
          : { brand: "visa", country: "US", exp_month: 12, exp_year: 2034, funding: "credit", last4: failed ? "0002" : "4242", network: "visa" },
        type: "card",
      },
      receipt_email: null,
      receipt_number: null,
      receipt_url: null,
      refunded: false,
      // Kept for `expand[]=refunds`; not part of the charge unless expanded (Stripe.Charge: `refunds?`).
      refunds: { object: "list", data: [], has_more: false, url: `/v1/charges/${id}/refunds` },
      review: null,
      shipping: null,
      source: null,
      source_transfer: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status: failed ? "failed" : "succeeded",
      transfer_data: null,
      transfer_group: null,
    };
  }

  /** A charge as the API shows it: `refunds` only when expanded. */
  function publicCharge(charge, expand = new Set()) {
    const out = clone(charge);
    for (const k of NOT_CHARGE_FIELDS) delete out[k];
    if (out.source === undefined) out.source = null;
    if (expand.has("refunds")) out.refunds = listOf(out.refunds?.data ?? [], `/v1/charges/${charge.id}/refunds`, false);
    else delete out.refunds;
    return out;
  }

  /** The emulator's older decline convention (a customer e-mail with `+decline@`), besides Stripe's test card `pm_card_chargeCustomerFail`. */
  const shouldDecline = (c, pm) => chargeFails(pm) || c.metadata?.emulator_outcome === "decline" || (typeof c.email === "string" && c.email.includes("+decline@"));

  /**
   * The payment method an automatic attempt uses, as Stripe picks it for an invoice: the invoice's
   * `default_payment_method`, else the customer's `invoice_settings.default_payment_method` (Stripe
   * then falls back to the customer's `default_source`, which the emulator has none of). Null: none.
   */
  function paymentMethodFor(inv, customer) {
    const id = inv.default_payment_method ?? customer.invoice_settings?.default_payment_method ?? null;
    const pm = id ? state.paymentMethods.get(id) : null;
    return pm && pm.customer === customer.id ? pm : null;
  }

  /**
   * One payment attempt of an open invoice: a payment intent and its invoice payment, and, when
   * there is a payment method to charge, a charge. Returns { outcome: "paid" | "declined" |
   * "no_payment_method", charge }.
   */
  function attemptPayment(inv, ctx) {
    const customer = state.customers.get(inv.customer);
    inv.attempt_count += 1;
    inv.attempted = true;
    const pm = paymentMethodFor(inv, customer);
    const pi = newId("pi");
    let charge = null;
    let outcome = "no_payment_method";
    if (pm) {
      const failed = shouldDecline(customer, pm);
      outcome = failed ? "declined" : "paid";
      charge = makeCharge({ amount: inv.amount_remaining, currency: inv.currency, customer, invoice: inv, paymentIntent: pi, failed, pm });
      state.charges.set(charge.id, charge);
    }
    state.paymentIntents.set(pi, charge?.id ?? null);
    state.paymentIntentStates.set(pi, {
      amount: inv.amount_remaining,
      currency: inv.currency,
      customer: customer.id,
      created: clock.now(),
      payment_method: outcome === "paid" ? pm.id : null,
      latest_charge: charge?.id ?? null,
      // A failed attempt leaves the intent waiting for another payment method (Stripe: requires_payment_method).
      status: outcome === "paid" ? "succeeded" : "requires_payment_method",
      last_payment_error:
        outcome === "declined"
          ? { type: "card_error", code: "card_declined", decline_code: "generic_decline", charge: charge.id, message: "Your card was declined.", payment_method: clone(pm) }
          : outcome === "no_payment_method"
            ? { type: "invalid_request_error", code: "payment_intent_payment_attempt_failed", message: "The customer has no payment method to charge (no default payment method on the invoice or the customer)." }
            : null,
    });
    // One invoice payment per payment intent; a retry after a decline makes a new intent.
    for (const p of inv.payments.data) p.is_default = false;
    inv.payments.data.push({
      id: newId("inpay"),
      object: "invoice_payment",
      amount_paid: outcome === "paid" ? charge.amount : null,
      amount_requested: inv.amount_remaining,
      created: clock.now(),
      currency: inv.currency,
      invoice: inv.id,
      is_default: true,
      livemode: false,
      payment: { type: "payment_intent", payment_intent: pi },
      status: outcome === "paid" ? "paid" : "open",
      status_transitions: { canceled_at: null, paid_at: outcome === "paid" ? clock.now() : null },
    });
    return { outcome, charge };
  }

  /** A payment intent as the API shows it (the fields of Stripe.PaymentIntent the emulator has). */
  function publicPaymentIntent(id) {
    const s = state.paymentIntentStates.get(id);
    if (!s) throw notFound("payment_intent", id, "intent");
    return {
      id,
      object: "payment_intent",
      amount: s.amount,
      amount_capturable: 0,
      amount_received: s.status === "succeeded" ? s.amount : 0,
      application: null,
      application_fee_amount: null,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: "automatic",
      client_secret: null,
      confirmation_method: "automatic",
      created: s.created,
      currency: s.currency,
      customer: s.customer,
      description: null,
      last_payment_error: clone(s.last_payment_error),
      latest_charge: s.latest_charge,
      livemode: false,
      metadata: {},
      next_action: null,
      on_behalf_of: null,
      payment_method: s.payment_method,
      payment_method_options: {},
      payment_method_types: ["card"],
      receipt_email: null,
      review: null,
      setup_future_usage: null,
      shipping: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status: s.status,
      transfer_data: null,
      transfer_group: null,
    };
  }
  route("GET", "/v1/payment_intents/:id", { client_secret: NOT, expand: [LEAF] }, (p, { id }) => (expansions(p), publicPaymentIntent(id)));

  /** Expansions of a list's items (`data.<field>`). */
  const expandsOfList = (p, allowed) => new Set([...expansions(p, allowed.map((a) => `data.${a}`))].map((e) => e.slice(5)));

  const allInvoicePayments = () => [...state.invoices.values()].flatMap((inv) => inv.payments?.data ?? []).sort((a, b) => a.created - b.created);
  /** An invoice payment as the API shows it (earlier emulator versions also named the charge in `payment`). */
  const publicInvoicePayment = (p) => {
    const out = clone(p);
    if (out.payment) out.payment = { type: out.payment.type, payment_intent: out.payment.payment_intent };
    return out;
  };

  route("GET", "/v1/charges/:id", { expand: [LEAF] }, (p, { id }) => {
    const expand = expansions(p, ["refunds"]);
    const ch = state.charges.get(id);
    if (!ch) throw notFound("charge", id);
    return publicCharge(ch, expand);
  });

  route("GET", "/v1/charges", { created: NOT, customer: LEAF, expand: [LEAF], payment_intent: LEAF, transfer_group: NOT, ...PAGINATION }, (p) => {
    const expand = expandsOfList(p, ["refunds"]);
    let items = [...state.charges.values()].sort((a, b) => a.created - b.created);
    if (p.customer) items = items.filter((c) => c.customer === p.customer);
    if (p.payment_intent) items = items.filter((c) => c.payment_intent === p.payment_intent);
    const out = page(items, p, "/v1/charges");
    out.data = out.data.map((c) => publicCharge(c, expand));
    return out;
  });

  route(
    "GET",
    "/v1/invoice_payments",
    { created: NOT, expand: [LEAF], invoice: LEAF, payment: { payment_intent: LEAF, payment_record: LEAF, type: LEAF }, status: LEAF, ...PAGINATION },
    (p) => {
      expansions(p, []);
      let items = allInvoicePayments();
      if (p.invoice) items = items.filter((x) => x.invoice === p.invoice);
      if (p.status) items = items.filter((x) => x.status === p.status);
      if (p.payment && typeof p.payment === "object") {
        if (!p.payment.type) throw invalidParam("Missing required param: payment[type].", "payment[type]", { code: "parameter_missing" });
        if (p.payment.type !== "payment_intent" && p.payment.type !== "payment_record") {
          throw invalidParam(`Invalid payment[type]: must be one of payment_intent or payment_record`, "payment[type]", { code: "parameter_invalid_string" });
        }
        items = items.filter((x) => x.payment.type === p.payment.type && (!p.payment.payment_intent || x.payment.payment_intent === p.payment.payment_intent) && !p.payment.payment_record);
      }
      const out = page(items, p, "/v1/invoice_payments");
      out.data = out.data.map(publicInvoicePayment);
      return out;
    },
  );
  route("GET", "/v1/invoice_payments/:id", { expand: [LEAF] }, (p, { id }) => {
    expansions(p, []);
    const found = allInvoicePayments().find((x) => x.id === id);
    if (!found) throw notFound("invoice_payment", id);
    return publicInvoicePayment(found);
  });

  return { attemptPayment, publicCharge, publicInvoicePayment };
}
