// Invoices: create, retrieve, add_lines (strict `amount` / `price_data`), lines, finalize, pay,
// void; the automatic payment attempts after finalize are collection.mjs's (on the emulator's clock).
import { createCollection } from "./collection.mjs";
import { applyBalanceAtFinalize } from "./balances.mjs";
import { ApiError, HASH, LEAF, NOT, PAGINATION, clone, expansions, invalid, invalidParam, listOf, mergeMetadata, missing, newId, notFound, page, toBool, toInt } from "./common.mjs";

/** Fields earlier emulator versions kept on invoices (and may still be in a state file) that the pinned version does not have. */
const NOT_INVOICE_FIELDS = ["charge", "payment_intent", "subscription", "pending_invoice_items_behavior", "days_until_due", "_pending"];
/** How many lines an invoice object embeds (the rest through GET /v1/invoices/:id/lines). */
const EMBEDDED_LINES = 10;

/** InvoiceCreateParams of the pinned SDK. */
const CREATE = {
  account_tax_ids: NOT,
  application_fee_amount: NOT,
  auto_advance: LEAF,
  automatic_tax: { enabled: LEAF, liability: NOT },
  automatically_finalizes_at: NOT,
  collection_method: LEAF,
  currency: LEAF,
  custom_fields: [{ name: LEAF, value: LEAF }],
  customer: LEAF,
  customer_account: NOT,
  days_until_due: LEAF,
  default_payment_method: LEAF,
  default_source: NOT,
  default_tax_rates: [LEAF],
  description: LEAF,
  discounts: [{ coupon: LEAF, discount: NOT, promotion_code: NOT }],
  due_date: LEAF,
  effective_at: NOT,
  expand: [LEAF],
  footer: LEAF,
  from_invoice: NOT,
  issuer: NOT,
  metadata: HASH,
  number: NOT,
  on_behalf_of: NOT,
  payment_settings: NOT,
  pending_invoice_items_behavior: LEAF,
  rendering: NOT,
  shipping_cost: NOT,
  shipping_details: NOT,
  statement_descriptor: LEAF,
  subscription: NOT,
  transfer_data: NOT,
};
/** InvoiceAddLinesParams of the pinned SDK. */
const ADD_LINES = {
  expand: [LEAF],
  invoice_metadata: HASH,
  lines: [
    {
      amount: LEAF,
      description: LEAF,
      discountable: LEAF,
      discounts: NOT,
      invoice_item: NOT,
      metadata: HASH,
      period: { end: LEAF, start: LEAF },
      price_data: {
        currency: LEAF,
        product: LEAF,
        product_data: { description: LEAF, images: NOT, metadata: HASH, name: LEAF, tax_code: NOT, unit_label: NOT },
        tax_behavior: NOT,
        unit_amount: LEAF,
        unit_amount_decimal: LEAF,
      },
      pricing: NOT,
      quantity: LEAF,
      tax_amounts: NOT,
      tax_rates: [LEAF],
    },
  ],
};
const FINALIZE = { auto_advance: LEAF, expand: [LEAF] };
const PAY = { expand: [LEAF], forgive: NOT, mandate: NOT, off_session: LEAF, paid_out_of_band: NOT, payment_method: NOT, source: NOT };
const EXPANDABLE = ["payments"];

/**
 * @param app { route, state, clock, emit, base, getCustomer, payments: { attemptPayment }, paymentDelayMs }
 */
export function registerInvoices(app) {
  const { route, state, clock, emit } = app;

  const getInvoice = (id) => {
    const i = state.invoices.get(id);
    if (!i) throw notFound("invoice", id, "invoice");
    return i;
  };

  function makeInvoice(p, customer) {
    const id = newId("in");
    const t = clock.now();
    const collection = p.collection_method ?? "charge_automatically";
    let dueDate = toInt(p.due_date, "due_date") ?? null;
    const daysUntilDue = toInt(p.days_until_due, "days_until_due");
    if (collection === "charge_automatically" && (dueDate !== null || daysUntilDue !== undefined)) {
      throw invalidParam("Invoices with `charge_automatically` collection method cannot have a due date.", dueDate !== null ? "due_date" : "days_until_due");
    }
    if (daysUntilDue !== undefined) dueDate = t + daysUntilDue * 86400;
    return {
      id,
      object: "invoice",
      account_country: "US",
      account_name: "Emulator",
      account_tax_ids: null,
      amount_due: 0,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: 0,
      amount_shipping: 0,
      application: null,
      attempt_count: 0,
      attempted: false,
      auto_advance: toBool(p.auto_advance, "auto_advance") ?? false,
      automatic_tax: p.automatic_tax && toBool(p.automatic_tax.enabled, "automatic_tax[enabled]")
        ? { disabled_reason: null, enabled: true, liability: { type: "self" }, provider: "stripe", status: null }
        : { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
      automatically_finalizes_at: null,
      billing_reason: "manual",
      collection_method: collection,
      created: t,
      currency: (p.currency || "usd").toLowerCase(),
      custom_fields: Array.isArray(p.custom_fields) ? p.custom_fields : null,
      customer: customer.id,
      customer_account: null,
      customer_address: customer.address,
      customer_email: customer.email,
      customer_name: customer.name,
      customer_phone: customer.phone,
      customer_shipping: customer.shipping,
      customer_tax_exempt: customer.tax_exempt,
      customer_tax_ids: [],
      default_payment_method: p.default_payment_method || null,
      default_source: null,
      default_tax_rates: app.tax.checkDefaultRates(p.default_tax_rates),
      description: p.description || null,
      discounts: [],
      due_date: dueDate,
      effective_at: null,
      ending_balance: null,
      footer: p.footer || null,
      from_invoice: null,
      hosted_invoice_url: null,
      invoice_pdf: null,
      issuer: { type: "self" },
      last_finalization_error: null,
      latest_revision: null,
      lines: { object: "list", data: [], has_more: false, url: `/v1/invoices/${id}/lines` },
      livemode: false,
      metadata: mergeMetadata({}, p.metadata),
      next_payment_attempt: null,
      number: null,
      on_behalf_of: null,
      parent: null,
      // Kept for `expand[]=payments` and GET /v1/invoice_payments; not part of the invoice unless expanded.
      payments: { object: "list", data: [], has_more: false, url: `/v1/invoice_payments` },
      payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
      period_end: t,
      period_start: t,
      post_payment_credit_notes_amount: 0,
      pre_payment_credit_notes_amount: 0,
      receipt_number: null,
      rendering: null,
      shipping_cost: null,
      shipping_details: null,
      starting_balance: 0,
      statement_descriptor: p.statement_descriptor || null,
      status: "draft",
      status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
      subtotal: 0,
      subtotal_excluding_tax: 0,
      test_clock: null,
      total: 0,
      total_discount_amounts: [],
      total_excluding_tax: 0,
      total_pretax_credit_amounts: [],
      total_taxes: [],
      webhooks_delivered_at: null,
    };
  }

  /** An invoice as the API shows it: its first lines, `payments` only when expanded. */
  function publicInvoice(inv, expand = new Set()) {
    const out = clone(inv);
    for (const k of NOT_INVOICE_FIELDS) delete out[k];
    if (inv.status === "draft") out.starting_balance = state.customers.get(inv.customer)?.balance ?? 0; // Stripe: a draft shows the current balance
    const lines = inv.lines.data;
    out.lines = listOf(clone(lines.slice(0, EMBEDDED_LINES)).map(publicLine), `/v1/invoices/${inv.id}/lines`, lines.length > EMBEDDED_LINES);
    if (expand.has("payments")) {
      const payments = [...(inv.payments?.data ?? [])].reverse().map(app.payments.publicInvoicePayment);
      out.payments = listOf(payments.slice(0, 10), `/v1/invoice_payments`, payments.length > 10);
    } else delete out.payments;
    return out;
  }
  const publicLine = (l) => {
    const out = clone(l);
    delete out._tax_rates;
    return out;
  };

  function recomputeTotals(inv) {
    app.coupons.applyDiscounts(inv); // each line's discount_amounts (coupons.mjs), before its tax
    app.tax.applyTaxes(inv); // subtotal, total_excluding_tax, total_taxes, total (tax.mjs)
    inv.amount_due = Math.max(0, inv.total);
    inv.amount_remaining = Math.max(0, inv.amount_due - inv.amount_paid);
    const starts = inv.lines.data.map((l) => l.period.start);
    const ends = inv.lines.data.map((l) => l.period.end);
    if (starts.length) {
      inv.period_start = Math.min(...starts);
      inv.period_end = Math.max(...ends);
    }
  }

  /** The product of a line's `price_data`: an existing one (`product`) or a new one (`product_data`). */
  function productOf(pd, param, made) {
    if (pd.product !== undefined && pd.product_data !== undefined) {
      throw invalidParam("You may only specify one of these parameters: product, product_data.", param("price_data][product"));
    }
    if (pd.product !== undefined) {
      if (!state.products.has(pd.product) && !made.some((x) => x.id === pd.product)) {
        throw new ApiError(400, { type: "invalid_request_error", code: "resource_missing", param: param("price_data][product"), message: `No such product: '${pd.product}'` }, { store: false });
      }
      return pd.product;
    }
    if (pd.product_data === undefined) {
      throw invalidParam("You must specify either `product` or `product_data` when creating a price.", param("price_data][product"), { code: "parameter_missing" });
    }
    const d = pd.product_data;
    if (!d || typeof d !== "object" || !d.name) throw missing(param("price_data][product_data][name"));
    const product = {
      id: newId("prod"),
      object: "product",
      active: true,
      created: clock.now(),
      description: d.description || null,
      images: [],
      livemode: false,
      metadata: mergeMetadata({}, d.metadata),
      name: String(d.name),
      type: "service",
      updated: clock.now(),
    };
    made.push(product);
    return product.id;
  }

  /** A line of `add_lines`: either `amount` (the line's total) or `price_data` (unit amount × quantity). */
  function makeLine(inv, l, index, madeProducts) {
    const param = (f) => `lines[${index}][${f}]`;
    if (!l || typeof l !== "object") throw missing(`lines[${index}]`);
    const quantity = toInt(l.quantity, param("quantity")) ?? 1;
    if (quantity < 0) throw invalidParam("This value must be greater than or equal to 0.", param("quantity"));
    let amount;
    let pricing;
    if (l.amount !== undefined && l.price_data !== undefined) {
      throw invalidParam("You may only specify one of these parameters: amount, price_data.", param("amount"));
    }
    if (l.price_data !== undefined) {
      const pd = l.price_data;
      if (!pd || typeof pd !== "object") throw missing(param("price_data][currency"));
      if (!pd.currency) throw missing(param("price_data][currency"));
      if (String(pd.currency).toLowerCase() !== inv.currency) {
        throw invalidParam(`The currency of price_data (${String(pd.currency).toLowerCase()}) must match the invoice's currency (${inv.currency}).`, param("price_data][currency"));
      }
      const product = productOf(pd, param, madeProducts);
      if (pd.unit_amount !== undefined && pd.unit_amount_decimal !== undefined) {
        throw invalidParam("You may only specify one of these parameters: unit_amount, unit_amount_decimal.", param("price_data][unit_amount"));
      }
      let unitDecimal;
      if (pd.unit_amount !== undefined) {
        const unit = toInt(pd.unit_amount, param("price_data][unit_amount"));
        if (unit < 0) throw invalidParam("This value must be greater than or equal to 0.", param("price_data][unit_amount"));
        unitDecimal = String(unit);
        amount = unit * quantity;
      } else if (pd.unit_amount_decimal !== undefined) {
        const text = String(pd.unit_amount_decimal);
        if (!/^\d+(\.\d{1,12})?$/.test(text)) throw invalidParam(`Invalid decimal: ${text}`, param("price_data][unit_amount_decimal"), { code: "parameter_invalid_decimal" });
        unitDecimal = text;
        amount = Math.round(Number(text) * quantity);
      } else {
        throw missing(param("price_data][unit_amount"));
      }
      pricing = { type: "price_details", price_details: { price: newId("price"), product }, unit_amount_decimal: unitDecimal };
    } else if (l.amount !== undefined) {
      amount = toInt(l.amount, param("amount"));
      pricing = { type: "price_details", unit_amount_decimal: quantity ? String(amount / quantity) : null };
    } else {
      throw missing(param("amount"));
    }
    const t = clock.now();
    const start = toInt(l.period?.start, param("period][start")) ?? t;
    const end = toInt(l.period?.end, param("period][end")) ?? start;
    return {
      id: newId("il"),
      object: "line_item",
      amount,
      currency: inv.currency,
      description: l.description || null,
      discount_amounts: [],
      discountable: toBool(l.discountable, param("discountable")) ?? amount >= 0, // Stripe: false by default for negative lines
      discounts: [],
      invoice: inv.id,
      livemode: false,
      metadata: mergeMetadata({}, l.metadata),
      parent: {
        type: "invoice_item_details",
        invoice_item_details: { invoice_item: newId("ii"), proration: false, proration_details: { credited_items: null }, subscription: null },
        subscription_item_details: null,
      },
      period: { start, end },
      pretax_credit_amounts: [],
      pricing,
      quantity,
      quantity_decimal: String(quantity),
      subscription: null,
      subtotal: amount,
      taxes: [],
      // The line's own tax rates (they replace the invoice's default_tax_rates); not part of the line object.
      _tax_rates: l.tax_rates === undefined ? null : app.tax.checkRates(l.tax_rates, param("tax_rates")),
    };
  }

  const { markPaid, attempt, cancelAttempt, schedulePayment, scheduleRetry, clearPending } = createCollection(app, publicInvoice);

  function finalize(inv, ctx, autoAdvance) {
    if (inv.status !== "draft") {
      throw invalid(`This invoice is already finalized, you can't re-finalize a non-draft invoice.`, { code: "invoice_not_editable" });
    }
    app.tax.checkFinalizable(inv); // Stripe Tax: an unrecognised customer location refuses finalization
    if (autoAdvance !== undefined) inv.auto_advance = autoAdvance;
    inv.last_finalization_error = null;
    inv.status = "open";
    const customer = state.customers.get(inv.customer);
    inv.number = `${customer.invoice_prefix}-${String(customer.next_invoice_sequence++).padStart(4, "0")}`;
    inv.status_transitions.finalized_at = clock.now();
    inv.effective_at = clock.now();
    inv.hosted_invoice_url = `${app.base.url}/invoice/${inv.id}`;
    inv.invoice_pdf = `${app.base.url}/invoice/${inv.id}/pdf`;
    recomputeTotals(inv);
    applyBalanceAtFinalize(inv, customer); // the customer's balance, and amounts below the minimum charge (balances.mjs)
    emit("invoice.finalized", publicInvoice(inv), ctx);
    if (inv.amount_due === 0) {
      markPaid(inv, ctx);
    } else if (inv.collection_method === "charge_automatically" && inv.auto_advance) {
      // Automatic collection: Stripe attempts the payment some time after finalize.
      inv.next_payment_attempt = clock.now() + Math.ceil((typeof app.paymentDelayMs === "number" ? app.paymentDelayMs : 0) / 1000);
      schedulePayment(inv);
    }
  }

  route("POST", "/v1/invoices", CREATE, (p) => {
    const expand = expansions(p, EXPANDABLE);
    if (!p.customer) throw missing("customer");
    const c = app.getCustomer(p.customer);
    if (p.collection_method && !["charge_automatically", "send_invoice"].includes(p.collection_method)) {
      throw invalidParam(`Invalid collection_method: must be one of charge_automatically or send_invoice`, "collection_method");
    }
    if (p.pending_invoice_items_behavior !== undefined && !["exclude", "include"].includes(p.pending_invoice_items_behavior)) {
      throw invalidParam(`Invalid pending_invoice_items_behavior: must be one of exclude or include`, "pending_invoice_items_behavior");
    }
    const inv = makeInvoice(p, c);
    inv.discounts = app.coupons.redeem(p.discounts, inv); // coupons.mjs
    state.invoices.set(inv.id, inv);
    return publicInvoice(inv, expand);
  });
  route("GET", "/v1/invoices/:id", { expand: [LEAF] }, (p, { id }) => publicInvoice(getInvoice(id), expansions(p, EXPANDABLE)));
  route("POST", "/v1/invoices/:id/add_lines", ADD_LINES, (p, { id }) => {
    const expand = expansions(p, EXPANDABLE);
    const inv = getInvoice(id);
    if (p.lines === undefined || p.lines === "") throw missing("lines");
    const lines = Array.isArray(p.lines) ? p.lines : [p.lines];
    if (inv.status !== "draft") {
      throw invalid(`You can only add lines to a draft invoice; this invoice is ${inv.status}.`, { code: "invoice_not_editable" });
    }
    const products = [];
    const made = lines.map((l, i) => makeLine(inv, l, i, products)); // validate all before adding any
    app.tax.checkLines(inv, made);
    for (const product of products) state.products.set(product.id, product);
    inv.lines.data.push(...made);
    recomputeTotals(inv);
    if (p.invoice_metadata !== undefined) inv.metadata = mergeMetadata(inv.metadata, p.invoice_metadata);
    return publicInvoice(inv, expand);
  });
  route("GET", "/v1/invoices/:id/lines", { expand: [LEAF], ...PAGINATION }, (p, { id }) => {
    expansions(p, []);
    const inv = getInvoice(id);
    const out = page(inv.lines.data, p, `/v1/invoices/${inv.id}/lines`, { inOrder: true });
    out.data = out.data.map(publicLine);
    return out;
  });
  route("POST", "/v1/invoices/:id/finalize", FINALIZE, (p, { id }, ctx) => {
    const expand = expansions(p, EXPANDABLE);
    const inv = getInvoice(id);
    finalize(inv, ctx, toBool(p.auto_advance, "auto_advance"));
    return publicInvoice(inv, expand);
  });
  route("POST", "/v1/invoices/:id/void", { expand: [LEAF] }, (p, { id }, ctx) => {
    const expand = expansions(p, EXPANDABLE);
    const inv = getInvoice(id);
    if (inv.status !== "open") {
      throw invalid(`You can only pass in open or uncollectible invoices. This invoice is ${inv.status}.`, { code: "invoice_not_open" });
    }
    cancelAttempt(inv);
    inv.status = "void";
    inv.amount_remaining = 0;
    inv.status_transitions.voided_at = clock.now();
    inv.next_payment_attempt = null;
    emit("invoice.voided", publicInvoice(inv), ctx);
    return publicInvoice(inv, expand);
  });
  route("POST", "/v1/invoices/:id/pay", PAY, (p, { id }, ctx) => {
    const expand = expansions(p, EXPANDABLE);
    toBool(p.off_session, "off_session");
    const inv = getInvoice(id);
    if (inv.status === "paid") throw invalid("Invoice is already paid", { code: "invoice_already_paid" });
    if (inv.status === "void") throw invalid("This invoice has been voided and can no longer be paid.", { code: "invoice_not_open" });
    if (inv.status === "draft") finalize(inv, ctx);
    cancelAttempt(inv);
    if (inv.status === "paid") return publicInvoice(inv, expand);
    const { outcome, charge } = attempt(inv, ctx);
    if (outcome === "declined") {
      throw new ApiError(402, {
        type: "card_error",
        code: "card_declined",
        decline_code: "generic_decline",
        charge: charge.id,
        message: "Your card was declined.",
      });
    }
    if (outcome === "no_payment_method") {
      throw invalid("This customer has no attached payment source or default payment method. Please consider adding a default payment method.");
    }
    return publicInvoice(inv, expand);
  });

  return {
    getInvoice,
    publicInvoice,
    markPaid,
    cancelAttempt,
    schedulePayment,
    scheduleRetry,
    /** Drops pending automatic attempts (reset). */
    clearPending,
  };
}
