// The emulator's control endpoints (`/_emulator/…`, no auth): the request log, events, webhook
// records, invoices, the clock, faults, the rps limit, the webhook target, reset, lock windows, and
// what the Dashboard or a customer on Stripe's hosted pages would do (the billing portal's default
// configuration, the Checkout page's completion). See README.md, "Control endpoints".
import { ApiError, clone } from "./common.mjs";

/**
 * @param deps { state, clock, config, stateFile, checkout: { complete }, locks (locks.mjs), changed, send(res, status, body), api: () => the emulator's programmatic API }
 */
export function createControl({ state, clock, config, stateFile, checkout, locks, changed, send, api }) {
  return async function handleControl(req, res, url, bodyText) {
    const json = () => {
      try {
        return bodyText ? JSON.parse(bodyText) : {};
      } catch {
        return {};
      }
    };
    const p = url.pathname;
    if (req.method === "GET" && p === "/_emulator/requests") return send(res, 200, { object: "list", data: clone(state.log) });
    if (req.method === "GET" && p === "/_emulator/webhooks") return send(res, 200, { object: "list", data: clone(state.webhooks) });
    if (req.method === "GET" && p === "/_emulator/invoices") {
      // Every invoice object (for drills and benchmarks): id, status, amounts, metadata.
      const data = [...state.invoices.values()].map((i) => ({ id: i.id, status: i.status, amount_due: i.amount_due, amount_paid: i.amount_paid, customer: i.customer, metadata: i.metadata, created: i.created }));
      return send(res, 200, { object: "list", data: clone(data) });
    }
    if (req.method === "GET" && p === "/_emulator/events") {
      // Every emitted event, oldest first; `?contains=<text>` keeps those whose JSON contains it.
      const contains = url.searchParams.get("contains");
      const events = [...state.events.values()].filter((e) => !contains || JSON.stringify(e).includes(contains));
      return send(res, 200, { object: "list", data: clone(events) });
    }
    if (req.method === "POST" && p === "/_emulator/missing") {
      // Which of the given ids (customers, invoices, charges, payment intents, refunds, portal
      // sessions, events) the emulator does not have; and how many objects it holds.
      const ids = Array.isArray(json().ids) ? json().ids.map(String) : [];
      const has = (id) => ["customers", "invoices", "charges", "paymentIntents", "refunds", "creditNotes", "sessions", "events"].some((k) => state[k].has(id));
      const counts = Object.fromEntries(["customers", "invoices", "charges", "refunds", "sessions", "events"].map((k) => [k, state[k].size]));
      return send(res, 200, { missing: ids.filter((id) => !has(id)), counts, stateFile });
    }
    if (req.method === "GET" && p === "/_emulator/config") {
      const { webhookSecret: _s, ...rest } = config;
      return send(res, 200, rest);
    }
    if (req.method === "GET" && p === "/_emulator/clock") return send(res, 200, { now: clock.now(), now_ms: clock.nowMs(), offset_ms: clock.offsetMs, pending: clock.pending });
    if (req.method === "POST" && p === "/_emulator/clock/advance") {
      try {
        api().advanceClock(json().seconds);
      } catch (err) {
        return send(res, 400, { error: { type: "invalid_request_error", message: String(err.message) } });
      }
      return send(res, 200, { now: clock.now(), now_ms: clock.nowMs(), offset_ms: clock.offsetMs, pending: clock.pending });
    }
    const completing = req.method === "POST" ? /^\/_emulator\/checkout\/sessions\/([^/]+)\/complete$/.exec(p) : null;
    if (completing) {
      // What a customer finishing the hosted Checkout page does (a test token, default pm_card_visa).
      try {
        return send(res, 200, checkout.complete(completing[1], json().payment_method ?? "pm_card_visa"));
      } catch (err) {
        return send(res, err instanceof ApiError ? err.status : 400, { error: err instanceof ApiError ? err.error : { type: "invalid_request_error", message: String(err.message) } });
      } finally {
        changed();
      }
    }
    if (req.method === "POST" && p === "/_emulator/reset") {
      api().reset();
      return send(res, 200, { ok: true });
    }
    if (req.method === "POST" && p === "/_emulator/faults") {
      const b = json();
      api().setFaults({ rate: b.rate, kinds: b.kinds });
      return send(res, 200, { rate: config.faultRate, kinds: config.faultKinds });
    }
    if (req.method === "POST" && p === "/_emulator/fault-rules") {
      const b = json();
      try {
        if (b.clear) api().clearFaultRules(typeof b.clear === "string" ? b.clear : undefined);
        else api().addFaultRule({ match: b.match, kinds: b.kinds, times: b.times });
      } catch (err) {
        return send(res, 400, { error: { type: "invalid_request_error", message: String(err.message) } });
      }
      return send(res, 200, { rules: clone(config.faultRules) });
    }
    if (req.method === "POST" && p === "/_emulator/idempotency/age") {
      // A scoped stand-in for advancing the clock (safe with parallel tests): the saved results of
      // the keys containing `match` are made `seconds` older, so past 24 hours they are pruned.
      const b = json();
      try {
        return send(res, 200, { aged: api().ageIdempotencyKeys(b.match, b.seconds) });
      } catch (err) {
        return send(res, 400, { error: { type: "invalid_request_error", message: String(err.message) } });
      }
    }
    if (req.method === "GET" && p === "/_emulator/locks") return send(res, 200, { held: locks.held(), rules: locks.rules });
    if (req.method === "POST" && p === "/_emulator/locks") {
      // Lock windows: writes whose path or body contain `match` hold their object's lock `windowMs` (locks.mjs).
      const b = json();
      try {
        if (b.clear) locks.clearRules(typeof b.clear === "string" ? b.clear : undefined);
        else locks.addRule({ match: b.match, windowMs: b.windowMs });
      } catch (err) {
        return send(res, 400, { error: { type: "invalid_request_error", message: String(err.message) } });
      }
      return send(res, 200, { held: locks.held(), rules: locks.rules });
    }
    if (req.method === "POST" && p === "/_emulator/billing-portal/default") {
      // What saving the customer portal settings in Stripe's Dashboard does: the default configuration.
      const b = json();
      try {
        return send(res, 200, api().savePortalDefault({ ...(b.features ? { features: b.features } : {}), ...(b.default_return_url !== undefined ? { default_return_url: b.default_return_url } : {}) }));
      } catch (err) {
        return send(res, 400, { error: { type: "invalid_request_error", message: String(err.message) } });
      }
    }
    if (req.method === "POST" && p === "/_emulator/tax/registrations") {
      // A Stripe Tax registration and its rate: a test fixture (real Stripe Tax uses published rates; tax.mjs).
      try {
        return send(res, 200, api().setTaxRegistration(json()));
      } catch (err) {
        return send(res, 400, { error: { type: "invalid_request_error", message: String(err.message) } });
      } finally {
        changed();
      }
    }
    if (req.method === "POST" && p === "/_emulator/rps") {
      api().setRpsLimit(json().limit);
      return send(res, 200, { limit: config.rpsLimit });
    }
    if (req.method === "POST" && p === "/_emulator/latency") {
      try {
        api().setLatency(json().ms);
      } catch (err) {
        return send(res, 400, { error: { type: "invalid_request_error", message: String(err.message) } });
      }
      return send(res, 200, { ms: config.latencyMs });
    }
    if (req.method === "POST" && p === "/_emulator/webhook") {
      const b = json();
      config.webhookUrl = b.url ?? undefined;
      config.webhookSecret = b.secret ?? undefined;
      return send(res, 200, { url: config.webhookUrl ?? null });
    }
    return send(res, 404, { error: { type: "invalid_request_error", message: `Unknown control endpoint: ${req.method} ${p}` } });
  };
}
