// Customers: POST /v1/customers, GET and POST /v1/customers/:id.
import { HASH, LEAF, NOT, clone, expansions, invalid, mergeMetadata, newId, notFound, nullAddress, toInt } from "./common.mjs";

const ADDRESS = { city: LEAF, country: LEAF, line1: LEAF, line2: LEAF, postal_code: LEAF, state: LEAF };

/** CustomerCreateParams / CustomerUpdateParams of the pinned SDK: what is emulated, what is not. */
const COMMON = {
  address: ADDRESS,
  balance: LEAF,
  business_name: NOT,
  cash_balance: NOT,
  description: LEAF,
  email: LEAF,
  expand: [LEAF],
  individual_name: NOT,
  invoice_prefix: NOT,
  invoice_settings: { custom_fields: NOT, default_payment_method: LEAF, footer: NOT, rendering_options: NOT },
  metadata: HASH,
  name: LEAF,
  next_invoice_sequence: NOT,
  phone: LEAF,
  preferred_locales: [LEAF],
  shipping: NOT,
  source: NOT,
  tax: NOT,
  tax_exempt: LEAF,
  validate: NOT,
};
const CREATE = { ...COMMON, invoice_settings: NOT, payment_method: NOT, tax_id_data: NOT, test_clock: NOT };
const EXPANDABLE = ["invoice_settings.default_payment_method", "tax"];
const UPDATE = { ...COMMON, default_source: NOT };

export function registerCustomers(app) {
  const { route, state, clock, emit } = app;

  function makeCustomer(p) {
    const id = newId("cus");
    return {
      id,
      object: "customer",
      address: p.address && typeof p.address === "object" ? { ...nullAddress(), ...p.address } : null,
      balance: toInt(p.balance, "balance") ?? 0, // owed (positive) or credit (negative), applied at the next finalize (balances.mjs)
      created: clock.now(),
      currency: null,
      default_source: null,
      delinquent: false,
      description: p.description ?? null,
      discount: null,
      email: p.email ?? null,
      invoice_prefix: id.slice(4, 12).toUpperCase(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      livemode: false,
      metadata: mergeMetadata({}, p.metadata),
      name: p.name ?? null,
      next_invoice_sequence: 1,
      phone: p.phone ?? null,
      preferred_locales: Array.isArray(p.preferred_locales) ? p.preferred_locales : [],
      shipping: null,
      tax_exempt: p.tax_exempt || "none",
      test_clock: null,
    };
  }

  route("POST", "/v1/customers", CREATE, (p) => {
    expansions(p);
    const c = makeCustomer(p);
    state.customers.set(c.id, c);
    return clone(c);
  });
  /** A customer as the API shows it; `expand[]=invoice_settings.default_payment_method` gives the payment method itself. */
  const publicCustomer = (c, expand) => {
    const out = clone(c);
    const pm = out.invoice_settings.default_payment_method;
    if (expand.has("invoice_settings.default_payment_method") && pm) out.invoice_settings.default_payment_method = clone(state.paymentMethods.get(pm)) ?? pm;
    // `tax` is includable only (Stripe: `expand[]=tax`): whether Stripe Tax recognises the location.
    if (expand.has("tax")) out.tax = app.tax.customerTax(c);
    return out;
  };
  route("GET", "/v1/customers/:id", { expand: [LEAF] }, (p, { id }) => publicCustomer(app.getCustomer(id, "id"), expansions(p, EXPANDABLE)));
  route("POST", "/v1/customers/:id", UPDATE, (p, { id }, ctx) => {
    const expand = expansions(p, EXPANDABLE);
    const c = app.getCustomer(id, "id");
    const previous = {};
    for (const k of ["name", "email", "description", "phone", "tax_exempt"]) {
      if (p[k] !== undefined) {
        previous[k] = c[k];
        c[k] = p[k] === "" ? (k === "tax_exempt" ? "none" : null) : p[k];
      }
    }
    if (p.address !== undefined) {
      previous.address = c.address;
      c.address = p.address === "" ? null : { ...nullAddress(), ...(c.address ?? {}), ...p.address };
    }
    if (p.balance !== undefined && p.balance !== "") {
      previous.balance = c.balance;
      c.balance = toInt(p.balance, "balance");
    }
    if (p.preferred_locales !== undefined) {
      previous.preferred_locales = c.preferred_locales;
      c.preferred_locales = Array.isArray(p.preferred_locales) ? p.preferred_locales : [];
    }
    const defaultPm = p.invoice_settings?.default_payment_method;
    if (defaultPm !== undefined) {
      // Stripe: the payment method must be attached to this customer.
      const pm = defaultPm === "" ? null : state.paymentMethods.get(defaultPm);
      if (defaultPm !== "" && pm?.customer !== c.id) {
        throw invalid(`The customer does not have a payment method with the ID ${defaultPm}. The payment method must be attached to the customer.`, { code: "resource_missing", param: "invoice_settings[default_payment_method]" });
      }
      previous.invoice_settings = clone(c.invoice_settings);
      c.invoice_settings = { ...c.invoice_settings, default_payment_method: pm ? pm.id : null };
    }
    if (p.metadata !== undefined) {
      previous.metadata = c.metadata;
      c.metadata = mergeMetadata(c.metadata, p.metadata);
    }
    emit("customer.updated", c, ctx, { previous_attributes: clone(previous) });
    return publicCustomer(c, expand);
  });
}

/** The customer lookup the other resources use. */
export function customerLookup(state) {
  return (id, param = "customer") => {
    const c = state.customers.get(id);
    if (!c) throw notFound("customer", id, param);
    return c;
  };
}
