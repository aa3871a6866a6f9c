// Billing portal configurations: POST/GET /v1/billing_portal/configurations, GET/POST
// /v1/billing_portal/configurations/:id. Subscriptions are not emulated, so neither are the
// subscription features.
import { HASH, LEAF, NOT, PAGINATION, clone, expansions, invalidParam, mergeMetadata, missing, newId, notFound, page, toBool } from "./common.mjs";

const FEATURES = {
  customer_update: { allowed_updates: [LEAF], enabled: LEAF },
  invoice_history: { enabled: LEAF },
  payment_method_update: { enabled: LEAF, payment_method_configuration: NOT },
  subscription_cancel: NOT,
  subscription_update: NOT,
};
const BUSINESS_PROFILE = { headline: LEAF, privacy_policy_url: LEAF, terms_of_service_url: LEAF };
/** BillingPortal.ConfigurationCreateParams / UpdateParams / ListParams of the pinned SDK. */
const CREATE = { business_profile: BUSINESS_PROFILE, default_return_url: LEAF, expand: [LEAF], features: FEATURES, login_page: { enabled: LEAF }, metadata: HASH, name: LEAF };
const UPDATE = { ...CREATE, active: LEAF };
const LIST = { ...PAGINATION, active: LEAF, expand: [LEAF], is_default: LEAF };

const ALLOWED_UPDATES = ["address", "email", "name", "phone", "shipping", "tax_id"];

/** A configuration's features as Stripe answers them when nothing is enabled. */
const defaultFeatures = () => ({
  customer_update: { allowed_updates: [], enabled: false },
  invoice_history: { enabled: false },
  payment_method_update: { enabled: false, payment_method_configuration: null },
  subscription_cancel: { cancellation_reason: { enabled: false, options: [] }, enabled: false, mode: "at_period_end", proration_behavior: "none" },
  subscription_update: {
    billing_cycle_anchor: null,
    default_allowed_updates: [],
    enabled: false,
    products: [],
    proration_behavior: "none",
    schedule_at_period_end: { conditions: [] },
    trial_update_behavior: "end_trial",
  },
});

/** Applies `features` params onto `current`; on create each given feature needs `enabled`. */
function applyFeatures(current, f, creating) {
  if (f === undefined || f === "") return;
  const needEnabled = (name, v) => {
    const b = toBool(v?.enabled, `features[${name}][enabled]`);
    if (b === undefined && creating) throw missing(`features[${name}][enabled]`);
    return b;
  };
  if (f.customer_update !== undefined) {
    const enabled = needEnabled("customer_update", f.customer_update);
    if (enabled !== undefined) current.customer_update.enabled = enabled;
    const a = f.customer_update.allowed_updates;
    if (a !== undefined) {
      const list = a === "" ? [] : a.map(String);
      list.forEach((x, i) => {
        if (!ALLOWED_UPDATES.includes(x)) throw invalidParam(`Invalid features[customer_update][allowed_updates][${i}]: must be one of ${ALLOWED_UPDATES.join(", ")}`, `features[customer_update][allowed_updates][${i}]`);
      });
      current.customer_update.allowed_updates = list;
    }
  }
  for (const name of ["invoice_history", "payment_method_update"]) {
    if (f[name] === undefined) continue;
    const b = toBool(f[name].enabled, `features[${name}][enabled]`);
    if (b === undefined) throw missing(`features[${name}][enabled]`); // required on update too
    current[name].enabled = b;
  }
}

export function registerPortalConfigurations(app) {
  const { route, state, clock } = app;
  const get = (id) => {
    const c = state.portalConfigurations.get(id);
    if (!c) throw notFound("configuration", id);
    return c;
  };
  const businessProfile = (c, bp) => {
    if (bp === undefined || bp === "") return;
    for (const k of Object.keys(BUSINESS_PROFILE)) if (bp[k] !== undefined) c.business_profile[k] = bp[k] || null;
  };

  function make(p, isDefault) {
    const features = defaultFeatures();
    applyFeatures(features, p.features, true);
    const now = clock.now();
    const c = {
      id: newId("bpc"),
      object: "billing_portal.configuration",
      active: true,
      application: null,
      business_profile: { headline: null, privacy_policy_url: null, terms_of_service_url: null },
      created: now,
      default_return_url: p.default_return_url || null,
      features,
      is_default: isDefault,
      livemode: false,
      login_page: { enabled: toBool(p.login_page?.enabled, "login_page[enabled]") ?? false, url: null },
      metadata: mergeMetadata({}, p.metadata),
      name: p.name || null,
      updated: now,
    };
    if (c.login_page.enabled) c.login_page.url = `${app.base.url}/portal/login/${c.id}`;
    businessProfile(c, p.business_profile);
    state.portalConfigurations.set(c.id, c);
    return c;
  }

  route("POST", "/v1/billing_portal/configurations", CREATE, (p) => {
    expansions(p);
    if (p.features === undefined || p.features === "") throw missing("features");
    return clone(make(p, false));
  });
  route("GET", "/v1/billing_portal/configurations", LIST, (p) => {
    expansions(p);
    const active = toBool(p.active, "active");
    const isDefault = toBool(p.is_default, "is_default");
    const items = [...state.portalConfigurations.values()].filter((c) => (active === undefined || c.active === active) && (isDefault === undefined || c.is_default === isDefault));
    return page(items.map(clone), p, "/v1/billing_portal/configurations");
  });
  route("GET", "/v1/billing_portal/configurations/:id", { expand: [LEAF] }, (p, { id }) => {
    expansions(p);
    return clone(get(id));
  });
  route("POST", "/v1/billing_portal/configurations/:id", UPDATE, (p, { id }) => {
    expansions(p);
    const c = get(id);
    applyFeatures(c.features, p.features, false);
    businessProfile(c, p.business_profile);
    if (p.default_return_url !== undefined) c.default_return_url = p.default_return_url || null;
    if (p.name !== undefined) c.name = p.name || null;
    if (p.metadata !== undefined) c.metadata = mergeMetadata(c.metadata, p.metadata);
    const active = toBool(p.active, "active");
    if (active !== undefined) c.active = active;
    const login = toBool(p.login_page?.enabled, "login_page[enabled]");
    if (login !== undefined) c.login_page = { enabled: login, url: login ? `${app.base.url}/portal/login/${c.id}` : null };
    c.updated = clock.now();
    return clone(c);
  });

  return {
    /**
     * What saving the customer portal settings in Stripe's Dashboard does: the account's default
     * configuration (made once, then updated), which sessions use unless they name another.
     * Defaults: payment method update and invoice history, as `npm run stripe:setup` wants them.
     */
    saveDefault({ features = { payment_method_update: { enabled: "true" }, invoice_history: { enabled: "true" } }, default_return_url } = {}) {
      const current = [...state.portalConfigurations.values()].find((c) => c.is_default);
      if (!current) return clone(make({ features, default_return_url }, true));
      applyFeatures(current.features, features, false);
      if (default_return_url !== undefined) current.default_return_url = default_return_url || null;
      current.active = true;
      current.updated = clock.now();
      return clone(current);
    },
  };
}
