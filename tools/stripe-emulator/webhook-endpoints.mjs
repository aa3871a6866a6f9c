// Webhook endpoints: POST/GET /v1/webhook_endpoints, GET/POST/DELETE /v1/webhook_endpoints/:id.
// The endpoints are stored as Stripe keeps them (the `secret` shown only in the create answer);
// deliveries still go to the emulator's configured webhook URL (`--webhook-url`), not to these.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { API_VERSION, HASH, LEAF, NOT, PAGINATION, clone, expansions, invalidParam, mergeMetadata, missing, newId, notFound, page, toBool } from "./common.mjs";

/** WebhookEndpointCreateParams / UpdateParams / ListParams of the pinned SDK. */
const CREATE = { api_version: LEAF, connect: NOT, description: LEAF, enabled_events: [LEAF], expand: [LEAF], metadata: HASH, url: LEAF };
const UPDATE = { description: LEAF, disabled: LEAF, enabled_events: [LEAF], expand: [LEAF], metadata: HASH, url: LEAF };
const LIST = { ...PAGINATION, expand: [LEAF] };

/**
 * The event types an endpoint may subscribe to: the pinned SDK's `WebhookEndpointCreateParams.EnabledEvent`
 * (`*` and every type the version has), read from its types when the package is installed; else
 * (the emulator copied elsewhere) any name shaped like one.
 */
const EVENT_TYPES = (() => {
  try {
    const dts = readFileSync(new URL("../../node_modules/stripe/types/WebhookEndpointsResource.d.ts", import.meta.url), "utf8");
    const m = /type EnabledEvent =([^;]+);/.exec(dts);
    const list = m ? [...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1]) : [];
    return list.length > 100 ? new Set(list) : null;
  } catch {
    return null;
  }
})();
const EVENT_SHAPE = /^(\*|[a-z_]+(\.[a-z_]+)+)$/;
const isEventType = (e) => (EVENT_TYPES ? EVENT_TYPES.has(e) : EVENT_SHAPE.test(e));

function enabledEvents(v) {
  const list = Array.isArray(v) ? v.map(String) : [];
  if (list.length === 0) throw missing("enabled_events");
  list.forEach((e, i) => {
    if (!isEventType(e)) throw invalidParam(`Invalid enabled_events[${i}]: must be one of the event types Stripe sends, or '*'`, `enabled_events[${i}]`);
  });
  return list;
}
function endpointUrl(v) {
  let u;
  try {
    u = new URL(String(v));
  } catch {
    throw invalidParam("Invalid URL: An explicit scheme (such as https) must be provided.", "url");
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw invalidParam("Invalid URL: URL must be publicly accessible over http or https.", "url");
  return u.toString();
}

export function registerWebhookEndpoints(app) {
  const { route, state, clock } = app;
  const get = (id) => {
    const e = state.webhookEndpoints.get(id);
    if (!e) throw notFound("webhook_endpoint", id);
    return e;
  };

  route("POST", "/v1/webhook_endpoints", CREATE, (p) => {
    expansions(p);
    if (p.url === undefined || p.url === "") throw missing("url");
    const events = enabledEvents(p.enabled_events);
    // The emulator renders events only as the pinned version: another one is refused, saying so.
    if (p.api_version !== undefined && p.api_version !== API_VERSION) {
      throw invalidParam(`The Stripe emulator renders events only as ${API_VERSION}; api_version ${p.api_version} is not emulated (Stripe accepts it).`, "api_version", { code: "emulator_unsupported_parameter" });
    }
    const id = newId("we");
    const e = {
      id,
      object: "webhook_endpoint",
      api_version: p.api_version ?? null,
      application: null,
      created: clock.now(),
      description: p.description || null,
      enabled_events: events,
      livemode: false,
      metadata: mergeMetadata({}, p.metadata),
      status: "enabled",
      url: endpointUrl(p.url),
    };
    const secret = `whsec_${randomBytes(24).toString("base64url")}`;
    state.webhookEndpoints.set(id, { ...e, secret });
    // The secret is in the create answer only (Stripe: "Only returned at creation").
    return { ...clone(e), secret };
  });

  const view = (e) => {
    const { secret: _secret, ...rest } = e;
    return clone(rest);
  };

  route("GET", "/v1/webhook_endpoints", LIST, (p) => {
    expansions(p);
    return page([...state.webhookEndpoints.values()].map(view), p, "/v1/webhook_endpoints");
  });
  route("GET", "/v1/webhook_endpoints/:id", { expand: [LEAF] }, (p, { id }) => {
    expansions(p);
    return view(get(id));
  });
  route("POST", "/v1/webhook_endpoints/:id", UPDATE, (p, { id }) => {
    expansions(p);
    const e = get(id);
    if (p.url !== undefined) e.url = endpointUrl(p.url);
    if (p.enabled_events !== undefined) e.enabled_events = enabledEvents(p.enabled_events);
    if (p.description !== undefined) e.description = p.description || null;
    const disabled = toBool(p.disabled, "disabled");
    if (disabled !== undefined) e.status = disabled ? "disabled" : "enabled";
    if (p.metadata !== undefined) e.metadata = mergeMetadata(e.metadata, p.metadata);
    return view(e);
  });
  route("DELETE", "/v1/webhook_endpoints/:id", {}, (_p, { id }) => {
    get(id);
    state.webhookEndpoints.delete(id);
    return { id, object: "webhook_endpoint", deleted: true };
  });
}
