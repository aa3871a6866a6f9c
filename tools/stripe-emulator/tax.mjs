// Tax: `/v1/tax_rates` (create, retrieve), the tax of an invoice's lines from its `default_tax_rates`
// or from Stripe Tax (`automatic_tax[enabled]`), and a customer's tax location (`expand[]=tax`).
//
// Real Stripe Tax computes from the account's registrations and the customer's address with the
// jurisdictions' published rates. The emulator cannot know those rates: its registrations are a
// test fixture set through the control API (`POST /_emulator/tax/registrations`, README.md), each
// a country (and US state) with a percentage. Everything else follows Stripe (docs.stripe.com/tax/invoicing,
// docs.stripe.com/tax/customer-locations): the location comes from the customer's address (US: a
// 5-digit postal code, Canada: a province or postal code, elsewhere a country); a location Stripe
// cannot recognise makes finalization fail (`customer_tax_location_invalid`); no registration
// there means no tax (`not_collecting`). Tax is computed per line and each line's tax rounded to
// the minor unit (half away from zero), the invoice's being the sum of its lines'.
import { HASH, LEAF, clone, invalid, invalidParam, mergeMetadata, missing, newId, notFound } from "./common.mjs";

/** TaxRateCreateParams of the pinned SDK. */
const CREATE = {
  active: LEAF,
  country: LEAF,
  description: LEAF,
  display_name: LEAF,
  expand: [LEAF],
  inclusive: LEAF,
  jurisdiction: LEAF,
  metadata: HASH,
  percentage: LEAF,
  state: LEAF,
  tax_type: LEAF,
};

/** A percentage as an integer of 1/10,000 of a percent (Stripe takes up to four decimals). */
function percentUnits(text, param) {
  const s = String(text);
  const m = /^(\d{1,3})(?:\.(\d{1,4}))?$/.exec(s);
  if (!m) throw invalidParam(`Invalid decimal: ${s}`, param, { code: "parameter_invalid_decimal" });
  const units = Number(m[1]) * 10_000 + Number((m[2] ?? "").padEnd(4, "0"));
  if (units > 1_000_000) throw invalidParam("This value must be less than or equal to 100.", param);
  return units;
}

/** round_half_away_from_zero(numerator ÷ denominator), exactly for safe integers. */
function roundDiv(numerator, denominator) {
  const sign = numerator < 0 ? -1 : 1;
  const n = Math.abs(numerator);
  return sign * Math.floor((2 * n + denominator) / (2 * denominator));
}

/** A line's tax at `units` (1/10,000 %): exclusive on top of the amount, inclusive within it. */
export function lineTax(amount, units, inclusive) {
  return inclusive ? roundDiv(amount * units, 1_000_000 + units) : roundDiv(amount * units, 1_000_000);
}

/** The customer's tax location as Stripe Tax reads it from the billing address, or null (unrecognised). */
export function taxLocation(customer) {
  const a = customer?.address;
  if (!a || !a.country) return null;
  const country = String(a.country).toUpperCase();
  if (country === "US") return /^\d{5}(-\d{4})?$/.test(a.postal_code ?? "") ? { country, state: a.state ? String(a.state).toUpperCase() : null } : null;
  if (country === "CA") return a.state || a.postal_code ? { country, state: a.state ? String(a.state).toUpperCase() : null } : null;
  return { country, state: null };
}

export function registerTax(app) {
  const { route, state, clock } = app;

  function makeRate(p) {
    return {
      id: newId("txr"),
      object: "tax_rate",
      active: p.active === undefined ? true : String(p.active) === "true",
      country: p.country ?? null,
      created: clock.now(),
      description: p.description ?? null,
      display_name: String(p.display_name),
      effective_percentage: Number(p.percentage),
      flat_amount: null,
      inclusive: String(p.inclusive) === "true",
      jurisdiction: p.jurisdiction ?? null,
      jurisdiction_level: null,
      livemode: false,
      metadata: mergeMetadata({}, p.metadata),
      percentage: Number(p.percentage),
      rate_type: "percentage",
      state: p.state ?? null,
      tax_type: p.tax_type ?? null,
    };
  }

  route("POST", "/v1/tax_rates", CREATE, (p) => {
    if (!p.display_name) throw missing("display_name");
    if (p.percentage === undefined || p.percentage === "") throw missing("percentage");
    if (p.inclusive === undefined || p.inclusive === "") throw missing("inclusive");
    if (!["true", "false"].includes(String(p.inclusive))) throw invalidParam("Invalid boolean: " + p.inclusive, "inclusive");
    percentUnits(p.percentage, "percentage");
    const rate = makeRate(p);
    state.taxRates.set(rate.id, rate);
    return clone(rate);
  });
  route("GET", "/v1/tax_rates/:id", { expand: [LEAF] }, (_p, { id }) => {
    const rate = state.taxRates.get(id);
    if (!rate) throw notFound("tax_rate", id);
    return clone(rate);
  });

  /** Tax rate ids (`default_tax_rates`, a line's `tax_rates`): active tax rates, at most ten. */
  function checkRates(list, param) {
    if (list === undefined || list === "") return [];
    const ids = Array.isArray(list) ? list : [list];
    if (ids.length > 10) throw invalidParam("You may only specify up to 10 tax rates.", param);
    return ids.map((id, i) => {
      const rate = state.taxRates.get(id);
      if (!rate) throw invalidParam(`No such tax rate: '${id}'`, `${param}[${i}]`, { code: "resource_missing" });
      if (!rate.active) throw invalidParam(`Tax rate '${id}' is inactive and cannot be used.`, `${param}[${i}]`);
      return id;
    });
  }
  const checkDefaultRates = (list) => checkRates(list, "default_tax_rates");

  /** The registration at a location (the test fixture), or null. */
  function registrationAt(location) {
    if (!location) return null;
    return state.taxRegistrations.get(`${location.country}:${location.state ?? ""}`) ?? state.taxRegistrations.get(`${location.country}:`) ?? null;
  }

  /** The customer's `tax` hash (`expand[]=tax`): whether Stripe Tax can compute for its location. */
  function customerTax(customer) {
    const location = taxLocation(customer);
    return {
      automatic_tax: !location ? "unrecognized_location" : registrationAt(location) ? "supported" : "not_collecting",
      ip_address: null,
      location: location ? { country: location.country, source: "billing_address", state: location.state } : null,
      provider: "stripe",
    };
  }

  /**
   * Sets each line's `taxes` and the invoice's totals: default tax rates, or Stripe Tax for the
   * customer's location (its status `requires_location_inputs` when unrecognised).
   */
  function applyTaxes(inv) {
    const customer = state.customers.get(inv.customer);
    let rates = inv.default_tax_rates.map((id) => state.taxRates.get(id)).filter(Boolean);
    let reason = "standard_rated";
    if (inv.automatic_tax.enabled) {
      const location = taxLocation(customer);
      inv.automatic_tax.status = location ? "complete" : "requires_location_inputs";
      const registration = registrationAt(location);
      if (location && !registration) reason = "not_collecting";
      rates = registration ? [state.taxRates.get(registration.tax_rate)] : [];
      if (location && !registration) {
        for (const l of inv.lines.data) l.taxes = [{ amount: 0, tax_behavior: "exclusive", tax_rate_details: null, taxability_reason: reason, taxable_amount: taxableOf(l), type: "tax_rate_details" }];
        return totals(inv);
      }
    }
    for (const l of inv.lines.data) {
      // A line's own tax rates replace the invoice's default ones.
      const lineRates = l._tax_rates ? l._tax_rates.map((id) => state.taxRates.get(id)).filter(Boolean) : rates;
      const base = taxableOf(l);
      l.taxes = lineRates.map((r) => ({
        amount: lineTax(base, percentUnits(r.percentage, "percentage"), r.inclusive),
        tax_behavior: r.inclusive ? "inclusive" : "exclusive",
        tax_rate_details: { tax_rate: r.id },
        taxability_reason: reason,
        taxable_amount: r.inclusive ? base - lineTax(base, percentUnits(r.percentage, "percentage"), true) : base,
        type: "tax_rate_details",
      }));
    }
    return totals(inv);
  }

  /** The amount a line is taxed on: its amount less its discounts (`discount_amounts`, coupons.mjs). */
  const taxableOf = (l) => l.amount - (l.discount_amounts ?? []).reduce((a, d) => a + d.amount, 0);

  function totals(inv) {
    const byRate = new Map();
    let exclusive = 0;
    let inclusive = 0;
    for (const l of inv.lines.data) {
      for (const t of l.taxes ?? []) {
        const k = `${t.tax_rate_details?.tax_rate ?? ""}:${t.tax_behavior}:${t.taxability_reason}`;
        const agg = byRate.get(k) ?? { ...clone(t), amount: 0, taxable_amount: 0 };
        agg.amount += t.amount;
        agg.taxable_amount += t.taxable_amount ?? 0;
        byRate.set(k, agg);
        if (t.tax_behavior === "exclusive") exclusive += t.amount;
        else inclusive += t.amount;
      }
    }
    const subtotal = inv.lines.data.reduce((a, l) => a + l.amount, 0);
    const discounts = (inv.total_discount_amounts ?? []).reduce((a, d) => a + d.amount, 0);
    inv.subtotal = subtotal; // before invoice-level discounts and exclusive tax
    inv.subtotal_excluding_tax = subtotal - inclusive;
    inv.total_excluding_tax = subtotal - discounts - inclusive; // "including all discounts but excluding all tax"
    inv.total = subtotal - discounts + exclusive;
    inv.total_taxes = [...byRate.values()];
    return inv;
  }

  /** Stripe refuses to finalize an automatic-tax invoice whose customer location it cannot recognise. */
  function checkFinalizable(inv) {
    if (inv.automatic_tax.enabled && !taxLocation(state.customers.get(inv.customer))) {
      const error = { type: "invalid_request_error", code: "customer_tax_location_invalid", message: "The customer's location isn't recognized. Provide a valid address to calculate tax." };
      inv.last_finalization_error = { ...error, doc_url: "https://docs.stripe.com/error-codes/customer-tax-location-invalid", param: "customer" };
      throw invalid(error.message, { code: error.code });
    }
  }

  /** Automatic tax refuses negative items and items with manual tax rates (docs: incompatible items cannot be added). */
  function checkLines(inv, lines) {
    if (!inv.automatic_tax.enabled) return;
    const i = lines.findIndex((l) => l.amount < 0);
    if (i >= 0) throw invalidParam("Invoice items with negative amounts cannot be added to invoices with automatic tax enabled.", `lines[${i}][amount]`);
    const j = lines.findIndex((l) => l._tax_rates?.length);
    if (j >= 0) throw invalidParam("Invoice items with tax rates cannot be added to invoices with automatic tax enabled.", `lines[${j}][tax_rates]`);
  }

  /** The control API's fixture: a registration (country, US/CA state or none) taxed at `percentage`. */
  function setRegistration({ country, state: region, percentage }) {
    if (!/^[A-Z]{2}$/.test(String(country ?? ""))) throw new Error("country must be an ISO code (two capitals)");
    percentUnits(percentage, "percentage");
    const rate = makeRate({ display_name: "Sales tax", percentage: String(percentage), inclusive: "false", country, ...(region ? { state: region } : {}) });
    state.taxRates.set(rate.id, rate);
    const registration = { country, state: region ?? null, percentage: Number(percentage), tax_rate: rate.id };
    state.taxRegistrations.set(`${country}:${region ?? ""}`, registration);
    return clone(registration);
  }

  return { checkRates, checkDefaultRates, applyTaxes, checkFinalizable, checkLines, customerTax, setRegistration };
}

