// Billing portal sessions: POST /v1/billing_portal/sessions.
import { LEAF, NOT, clone, expansions, missing, newId } from "./common.mjs";

/** BillingPortal.SessionCreateParams of the pinned SDK. */
const CREATE = { configuration: NOT, customer: LEAF, customer_account: NOT, expand: [LEAF], flow_data: NOT, locale: LEAF, on_behalf_of: NOT, return_url: LEAF };

export function registerPortal(app) {
  const { route, state, clock } = app;
  route("POST", "/v1/billing_portal/sessions", CREATE, (p) => {
    expansions(p);
    if (!p.customer) throw missing("customer");
    app.getCustomer(p.customer);
    const id = newId("bps");
    const s = {
      id,
      object: "billing_portal.session",
      configuration: "bpc_emulator",
      created: clock.now(),
      customer: p.customer,
      customer_account: null,
      flow: null,
      livemode: false,
      locale: p.locale ?? null,
      on_behalf_of: null,
      return_url: p.return_url ?? null,
      url: `${app.base.url}/portal/${id}`,
    };
    state.sessions.set(id, s);
    return clone(s);
  });
}
