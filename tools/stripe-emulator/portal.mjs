// Billing portal sessions: POST /v1/billing_portal/sessions.
// As on Stripe, a session needs a portal configuration: the one named by `configuration`, else the
// account's default one, which only saving the customer portal settings in the Dashboard makes
// (`POST /_emulator/billing-portal/default` stands for that here; configurations made through the
// API are never the default). Without either, Stripe refuses the session (400).
import { LEAF, NOT, clone, expansions, invalid, missing, newId, notFound } from "./common.mjs";

/** BillingPortal.SessionCreateParams of the pinned SDK. */
const CREATE = { configuration: LEAF, customer: LEAF, customer_account: NOT, expand: [LEAF], flow_data: NOT, locale: LEAF, on_behalf_of: NOT, return_url: LEAF };

/** Stripe's refusal of a session when the account (test mode) has no default configuration. */
export const portalNotConfigured = () =>
  invalid(
    "No configuration provided and your test mode default configuration has not been created. Provide a configuration or create your default by saving your customer portal settings in test mode at https://dashboard.stripe.com/test/settings/billing/portal.",
    {},
    { store: false },
  );

export function registerPortal(app) {
  const { route, state, clock } = app;
  route("POST", "/v1/billing_portal/sessions", CREATE, (p) => {
    expansions(p);
    if (!p.customer) throw missing("customer");
    app.getCustomer(p.customer);
    let configuration;
    if (p.configuration) {
      configuration = state.portalConfigurations.get(p.configuration);
      if (!configuration) throw notFound("configuration", p.configuration, "configuration");
      if (!configuration.active) throw invalid("This configuration is inactive. Portal sessions cannot be created with an inactive configuration.", { param: "configuration" }, { store: false });
    } else {
      configuration = [...state.portalConfigurations.values()].find((c) => c.is_default && c.active);
      if (!configuration) throw portalNotConfigured();
    }
    const id = newId("bps");
    const s = {
      id,
      object: "billing_portal.session",
      configuration: configuration.id,
      created: clock.now(),
      customer: p.customer,
      customer_account: null,
      flow: null,
      livemode: false,
      locale: p.locale ?? null,
      on_behalf_of: null,
      return_url: p.return_url ?? configuration.default_return_url ?? null,
      url: `${app.base.url}/portal/${id}`,
    };
    state.sessions.set(id, s);
    return clone(s);
  });
}
