// Local Stripe API emulator (subset) for development and tests. Plain ESM, Node built-ins only.
// See README.md in this folder for endpoints, shapes, idempotency, faults, webhooks, the clock and
// control endpoints. This file is the HTTP server; each resource lives in its own module:
//   customers.mjs, invoices.mjs, collection.mjs and retries.mjs (automatic collection),
//   payments.mjs (charges, payment intents, invoice payments), refunds.mjs, checkout.mjs (setup
//   mode, setup intents), control.mjs (/_emulator/…),
//   portal.mjs, portal-configurations.mjs, payment-methods.mjs, webhook-endpoints.mjs,
//   webhooks.mjs (events and deliveries), clock.mjs, idempotency.mjs, locks.mjs (object locks),
//   control.mjs (the /_emulator endpoints), request.mjs (API keys, logged headers),
//   persistence.mjs (the state file), common.mjs (ids, forms, errors, parameters, lists).
import { createServer } from "node:http";
import { ApiError, API_VERSION, checkParams, clone, mulberry32, newId, parseForm, seedToInt } from "./common.mjs";
import { createClock } from "./clock.mjs";
import { apiKeyOf, clientHeaders } from "./request.mjs";
import { createLocks, lockTimeout, writtenObject } from "./locks.mjs";
import { customerLookup, registerCustomers } from "./customers.mjs";
import { createIdempotency, keyScope } from "./idempotency.mjs";
import { registerInvoices } from "./invoices.mjs";
import { registerTax } from "./tax.mjs";
import { registerCoupons } from "./coupons.mjs";
import { registerLookups } from "./lookups.mjs";
import { registerPayments } from "./payments.mjs";
import { OPTIONAL_MAPS, STATE_FORMAT, STATE_MAPS, STATE_VERSION, StateFileError, createSaver, loadInto, readStateFile, removeLeftovers, stateFilePath } from "./persistence.mjs";
import { registerPaymentMethods } from "./payment-methods.mjs";
import { registerCheckout } from "./checkout.mjs";
import { createControl } from "./control.mjs";
import { AFTER_RETRIES, DEFAULT_RETRY_DELAYS_S } from "./retries.mjs";
import { portalNotConfigured, registerPortal } from "./portal.mjs";
import { registerPortalConfigurations } from "./portal-configurations.mjs";
import { registerRefunds } from "./refunds.mjs";
import { registerCreditNotes } from "./credit-notes.mjs";
import { registerWebhookEndpoints } from "./webhook-endpoints.mjs";
import { SANDBOX_RETRY_DELAYS_MS, createWebhooks, registerEvents } from "./webhooks.mjs";

export { API_VERSION, parseForm, STATE_FORMAT, STATE_VERSION, stateFilePath, StateFileError };

/** The default delay of the automatic payment attempt after finalize: 10–50 ms (real time, or an advance of the clock). */
const defaultPaymentDelay = () => 10 + Math.floor(Math.random() * 41);

export async function startStripeEmulator({
  port = 0,
  host = "127.0.0.1",
  webhookUrl,
  webhookSecret,
  rpsLimit = 100,
  faultRate = 0,
  faultKinds = ["429", "500", "timeout"],
  timeoutMs = 30000,
  /** Time (ms, real) every API request takes before it is handled, as Stripe's own processing and the network would (default 0). */
  latencyMs = 0,
  seed,
  state: statePath,
  stateSaveDelayMs = 100,
  /** Delay (ms of the emulator's clock) from finalize to the automatic payment attempt; default 10–50 ms. */
  paymentDelayMs,
  /** Delays (ms of the emulator's clock) of the retries of a failed webhook delivery; default Stripe's sandbox schedule. */
  webhookRetryDelaysMs = SANDBOX_RETRY_DELAYS_MS,
  /** Delay (ms of the emulator's clock) before an asynchronous test-card refund settles; default 30 s. */
  refundSettleDelayMs,
  /** How long every write holds its object's lock before it executes (ms; default 0: off). See locks.mjs. */
  lockWindowMs = 0,
  /** Delays (s of the emulator's clock) of the retries of a declined automatic payment, each after the previous attempt (retries.mjs). */
  retryDelaysS = DEFAULT_RETRY_DELAYS_S,
  /** After the last retry fails: "leave_open" (default) or "mark_uncollectible". */
  afterRetries = "leave_open",
  /** How long (ms of the emulator's clock) a new object takes to become searchable (Stripe: under a minute); default 0. */
  searchDelayMs = 0,
} = {}) {
  if (!(Number.isFinite(Number(latencyMs)) && Number(latencyMs) >= 0)) throw new Error("latencyMs must be a number >= 0");
  if (!Array.isArray(retryDelaysS) || !retryDelaysS.every((d) => Number.isFinite(Number(d)) && Number(d) >= 0)) throw new Error("retryDelaysS must be a list of numbers >= 0");
  if (!AFTER_RETRIES.includes(afterRetries)) throw new Error(`afterRetries must be one of ${AFTER_RETRIES.join(", ")}`);
  const config = {
    webhookUrl,
    webhookSecret,
    rpsLimit,
    faultRate,
    faultKinds: faultKinds.map(String),
    /** Scoped fault rules: { match, kinds, remaining (null = until cleared) }. */
    faultRules: [],
    timeoutMs,
    latencyMs: Number(latencyMs),
  };
  if (paymentDelayMs !== undefined && !(Number.isFinite(Number(paymentDelayMs)) && Number(paymentDelayMs) >= 0)) throw new Error("paymentDelayMs must be a number >= 0");
  const random = seed === undefined ? Math.random : mulberry32(seedToInt(seed));
  const heldSockets = new Set();
  const locks = createLocks({ windowMs: Number(lockWindowMs) || 0 });

  const state = {
    customers: new Map(),
    invoices: new Map(),
    charges: new Map(),
    paymentIntents: new Map(), // pi id → charge id
    refunds: new Map(),
    creditNotes: new Map(),
    sessions: new Map(),
    events: new Map(),
    idempotency: new Map(), // `${keyScope(apiKey)}\0${key}` → { fingerprint, status, body, requestId, at }
    products: new Map(), // made by invoice lines' price_data[product_data]
    webhookEndpoints: new Map(), // each with its signing secret
    portalConfigurations: new Map(),
    paymentMethods: new Map(), // made by attaching Stripe's test tokens (pm_card_visa)
    paymentIntentStates: new Map(), // pi id → { status, last_payment_error, … } (GET /v1/payment_intents/:id)
    checkoutSessions: new Map(), // setup mode (checkout.mjs)
    setupIntents: new Map(),
    taxRates: new Map(), // tax.mjs: POST /v1/tax_rates, and the registrations' rates
    taxRegistrations: new Map(), // `${country}:${state}` → the control API's tax registration fixture (tax.mjs)
    coupons: new Map(), // coupons.mjs: POST /v1/coupons
    discounts: new Map(), // coupons.mjs: an invoice's discounts (a coupon redeemed)
    log: [],
    webhooks: [],
    window: [], // timestamps (ms) of accepted requests, for the rps limit
  };

  // Persistence (only with a `state` path): every object map, the idempotency records and the
  // clock's offset, saved at most `stateSaveDelayMs` after a change and on close.
  const stateFile = statePath ? stateFilePath(statePath) : null;
  const loaded = stateFile ? readStateFile(stateFile) : null;
  if (loaded) loadInto(state, stateFile, loaded);
  const clock = createClock({ offsetMs: loaded?.clockOffsetMs ?? 0 });
  /** Pending deliveries loaded while webhooks are off: kept for a later start that has them. */
  const heldWebhooks = new Set(loaded && !(webhookUrl && webhookSecret) ? loaded.pendingWebhooks : []);
  let closed = false;
  const base = { url: "" };
  const idempotency = createIdempotency({ state, clock });
  function snapshot() {
    idempotency.prune();
    const out = { format: STATE_FORMAT, version: STATE_VERSION, savedAt: new Date().toISOString(), clockOffsetMs: clock.offsetMs };
    for (const k of [...STATE_MAPS, ...OPTIONAL_MAPS]) out[k] = [...state[k].entries()];
    // Events whose webhook delivery was still being retried: delivered again on the next start.
    out.pendingWebhooks = [...new Set([...heldWebhooks, ...state.webhooks.filter((w) => !w.done).map((w) => w.event_id)])].filter((id) => state.events.has(id));
    return out;
  }
  const saver = createSaver({ file: stateFile, delayMs: stateSaveDelayMs, snapshot, isClosed: () => closed });
  const changed = saver.changed;
  const saveOnExit = () => saver.saveNow();
  if (stateFile) removeLeftovers(stateFile);

  // ------------------------------------------------------------------ resources
  const routes = [];
  /** A route with the parameters the pinned version gives its endpoint (unknown ones are refused first). */
  const route = (method, pattern, spec, handler) => {
    const keys = [];
    const re = new RegExp("^" + pattern.replace(/:(\w+)/g, (_, k) => (keys.push(k), "([^/]+)")) + "/?$");
    routes.push({ method, re, keys, handler: (params, pathParams, ctx) => (checkParams(params, spec), handler(params, pathParams, ctx)) });
  };
  const app = {
    route,
    state,
    clock,
    config,
    base,
    changed,
    isClosed: () => closed,
    getCustomer: customerLookup(state),
    paymentDelayMs: paymentDelayMs === undefined ? defaultPaymentDelay : Number(paymentDelayMs),
    refundSettleDelayMs: refundSettleDelayMs === undefined ? undefined : Number(refundSettleDelayMs),
    retryDelaysS: retryDelaysS.map(Number),
    afterRetries,
  };
  const webhooks = createWebhooks(app, { webhookRetryDelaysMs });
  app.emit = webhooks.emit;
  registerLookups(app, { searchDelayMs: Number(searchDelayMs) || 0 }); // before customers: /v1/customers/search is no customer id
  app.tax = registerTax(app);
  app.coupons = registerCoupons(app);
  registerCustomers(app);
  app.payments = registerPayments(app);
  const invoices = registerInvoices(app);
  app.invoices = invoices;
  const refunds = registerRefunds(app);
  app.refunds = refunds;
  registerCreditNotes(app);
  registerPortal(app);
  const portalConfigurations = registerPortalConfigurations(app);
  app.paymentMethods = registerPaymentMethods(app);
  const checkout = registerCheckout(app);
  registerWebhookEndpoints(app);
  registerEvents(app);

  // ------------------------------------------------------------------ HTTP plumbing
  function send(res, status, body, headers = {}) {
    const text = typeof body === "string" ? body : JSON.stringify(body, null, 2);
    res.writeHead(status, {
      "content-type": typeof body === "string" ? "text/html; charset=utf-8" : "application/json",
      "content-length": Buffer.byteLength(text),
      "access-control-allow-origin": "*",
      "stripe-version": API_VERSION,
      ...headers,
    });
    res.end(text);
  }


  const handleControl = createControl({ state, clock, config, stateFile, checkout, locks, changed, send, api: () => api });

  async function handle(req, res) {
    const url = new URL(req.url, "http://emulator");
    const control = url.pathname.startsWith("/_emulator/");
    // An idempotency key is claimed as the request arrives, before its body: a second request with
    // the same key while this one is in flight gets 409 idempotency_key_in_use.
    const idempotencyKey = req.headers["idempotency-key"] ?? null;
    const early = control ? {} : apiKeyOf(req);
    const useIdem = !control && idempotencyKey && req.method === "POST" && early.key;
    const scopedKey = useIdem ? `${keyScope(early.key)}\0${idempotencyKey}` : null;
    const requestId = newId("req");
    const owns = useIdem ? idempotency.claim(scopedKey, requestId) : false;
    try {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const bodyText = Buffer.concat(chunks).toString("utf8");
      if (control) return await handleControl(req, res, url, bodyText);
      // Per-request latency: the request is handled (rate limit, faults, the endpoint) that much later.
      if (config.latencyMs > 0) await new Promise((r) => setTimeout(r, config.latencyMs));
      const opts = { requestId, idempotencyKey, scopedKey, owns, locked: false };
      // A write to an object another write holds: refused (lock_timeout); one with a lock window holds it.
      const objectId = req.method === "POST" ? writtenObject(url.pathname) : null;
      if (objectId && locks.isHeld(objectId)) return handleApi(req, res, url, bodyText, { ...opts, locked: true });
      const windowMs = objectId ? locks.windowFor(`${url.pathname}\n${bodyText}`) : 0;
      if (windowMs > 0) return await locks.hold(objectId, windowMs, () => handleApi(req, res, url, bodyText, opts));
      return handleApi(req, res, url, bodyText, opts);
    } finally {
      if (owns) idempotency.release(scopedKey, requestId);
    }
  }

  function handleApi(req, res, url, bodyText, { requestId, idempotencyKey, scopedKey, owns, locked }) {
    const entry = {
      id: requestId,
      timestamp: new Date().toISOString(),
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      rawQuery: url.search.replace(/^\?/, ""),
      headers: clientHeaders(req),
      body: bodyText,
      idempotencyKey,
      status: null,
      replayed: false,
      fault: null,
    };
    state.log.push(entry);
    /** The connection is closed before any answer (the `drop_response` fault). */
    const drop = () => {
      entry.status = "dropped";
      req.socket.destroy();
    };
    const reply = (status, body, headers = {}) => {
      entry.status = status;
      send(res, status, body, { "request-id": requestId, ...headers });
    };

    // Simple HTML pages for the portal/hosted invoice links.
    if (req.method === "GET" && /^\/(portal|invoice|checkout)\//.test(url.pathname)) {
      return reply(200, `<!doctype html><title>Stripe emulator</title><p>Stripe emulator page: ${url.pathname.replace(/[<>&]/g, "")}</p>`);
    }

    // 1) rate limit (sliding 1 s window over accepted requests)
    const t = Date.now();
    while (state.window.length && state.window[0] <= t - 1000) state.window.shift();
    if (config.rpsLimit > 0 && state.window.length >= config.rpsLimit) {
      entry.fault = "rps_limit";
      return reply(429, {
        error: {
          type: "rate_limit_error",
          code: "rate_limit",
          message: "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
        },
      });
    }
    state.window.push(t);

    // 2) injected faults: scoped rules first (requests whose path, body or idempotency key
    //    contain the rule's text), then the global random rate. They happen before the endpoint
    //    begins executing, so no idempotent result is saved for them.
    const haystack = `${url.pathname}\n${bodyText}\n${idempotencyKey ?? ""}`;
    const rule = config.faultRules.find((r) => r.remaining !== 0 && haystack.includes(r.match));
    let kind = null;
    if (rule) {
      kind = rule.kinds[Math.floor(random() * rule.kinds.length)];
      if (rule.remaining !== null && --rule.remaining <= 0) config.faultRules = config.faultRules.filter((r) => r !== rule);
    } else if (config.faultRate > 0 && config.faultKinds.length && random() < config.faultRate) {
      kind = config.faultKinds[Math.floor(random() * config.faultKinds.length)];
    }
    // `500_saved`: the endpoint fails once it began executing (before any change), so the 500 is
    // saved for the idempotency key and replayed, as Stripe documents.
    const failExecuting = kind === "500_saved";
    // `drop_response`: the request is executed (and its result saved for its key), then the
    // connection is closed before the answer: the client never learns the outcome (a timeout or a
    // reset on the way back).
    const dropResponse = kind === "drop_response";
    if (failExecuting || dropResponse) entry.fault = kind;
    if (kind !== null && !failExecuting && !dropResponse) {
      entry.fault = kind;
      if (kind === "429") {
        return reply(429, {
          error: { type: "rate_limit_error", code: "rate_limit", message: "Too many requests hit the API too quickly (injected fault)." },
        });
      }
      if (kind === "portal_unconfigured") {
        // As if the account had no default portal configuration (scoped: the rest of the run keeps it).
        const e = portalNotConfigured();
        return reply(e.status, { error: { ...e.error, request_log_url: null } });
      }
      if (kind === "500") {
        return reply(500, { error: { type: "api_error", message: "An unknown error occurred (injected fault)." } }, { "stripe-should-retry": "true" });
      }
      // timeout: hold the connection then destroy the socket (real time: a network matter)
      entry.status = "timeout";
      const socket = req.socket;
      heldSockets.add(socket);
      const timer = setTimeout(() => {
        heldSockets.delete(socket);
        socket.destroy();
      }, config.timeoutMs);
      socket.once("close", () => clearTimeout(timer));
      return;
    }

    // 3) authentication
    const auth = apiKeyOf(req);
    if (auth.error === "none") {
      return reply(
        401,
        {
          error: {
            type: "invalid_request_error",
            message:
              "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
          },
        },
        { "www-authenticate": 'Basic realm="Stripe"' },
      );
    }
    if (auth.error === "invalid") {
      const k = String(auth.key);
      const masked = k.length > 12 ? `${k.slice(0, 8)}${"*".repeat(Math.max(0, k.length - 12))}${k.slice(-4)}` : "****";
      return reply(401, { error: { type: "invalid_request_error", code: "api_key_invalid", message: `Invalid API Key provided: ${masked}` } });
    }

    // 4) route
    let match = null;
    for (const r of routes) {
      const m = r.re.exec(url.pathname);
      if (!m || r.method !== req.method) continue;
      match = { r, params: Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1])])) };
      break;
    }
    if (!match) {
      return reply(404, {
        error: {
          type: "invalid_request_error",
          message: `Unrecognized request URL (${req.method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        },
      });
    }

    // 5) the object's lock (held by a concurrent write): 429 lock_timeout, not saved for the key
    if (locked) {
      const e = lockTimeout();
      entry.fault = "lock_timeout";
      return reply(e.status, { error: { ...e.error, request_log_url: null } }, scopedKey ? { "idempotency-key": idempotencyKey } : {});
    }

    // 6) idempotency (POST only), scoped per API key
    const fingerprint = `${req.method} ${url.pathname}\n${bodyText}`;
    if (scopedKey) {
      if (!owns) {
        entry.fault = null;
        return reply(409, idempotency.inUseError(), { "idempotency-key": idempotencyKey });
      }
      const prev = idempotency.lookup(scopedKey);
      if (prev) {
        if (prev.fingerprint !== fingerprint) {
          return reply(400, {
            error: {
              type: "idempotency_error",
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            },
          });
        }
        entry.replayed = true;
        if (dropResponse) return drop();
        return reply(prev.status, prev.body, {
          "idempotent-replayed": "true",
          "original-request": prev.requestId,
          "idempotency-key": idempotencyKey,
        });
      }
    }

    const params = req.method === "GET" || req.method === "DELETE" ? parseForm(url.search.replace(/^\?/, "")) : parseForm(bodyText || url.search.replace(/^\?/, ""));
    const ctx = { requestId, idempotencyKey };
    let status;
    let body;
    let store = true;
    let extraHeaders = {};
    try {
      if (failExecuting) throw new ApiError(500, { type: "api_error", message: "An unknown error occurred (injected fault, saved for its idempotency key)." });
      body = match.r.handler(params, match.params, ctx);
      status = 200;
    } catch (e) {
      if (!(e instanceof ApiError)) {
        // The endpoint began executing: like Stripe, the 500 is saved for the key and replayed.
        console.error("[stripe-emulator] internal error", e);
        e = new ApiError(500, { type: "api_error", message: `Emulator internal error: ${e?.message ?? e}` });
      }
      status = e.status;
      body = { error: { ...e.error, request_log_url: null } };
      store = e.store;
      extraHeaders = e.headers;
    }
    if (scopedKey) {
      extraHeaders["idempotency-key"] = idempotencyKey;
      if (store) idempotency.save(scopedKey, { fingerprint, status, body, requestId });
    }
    if (req.method !== "GET") changed();
    if (dropResponse) return drop();
    reply(status, body, extraHeaders);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      console.error("[stripe-emulator]", e);
      if (!res.headersSent) send(res, 500, { error: { type: "api_error", message: String(e?.message ?? e) } });
    });
  });
  // Idle keep-alive connections stay open longer than a client pool keeps them (no lost requests).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  base.url = `http://${host.includes(":") ? `[${host}]` : host}:${actualPort}`;

  if (stateFile) process.on("exit", saveOnExit); // a last save however the process ends (short of a kill)

  // Work that was pending when the state was saved resumes: automatic payment attempts after
  // finalize, and webhook deliveries that were still being retried.
  if (loaded) {
    for (const inv of state.invoices.values()) {
      if (inv.status === "open" && inv.collection_method === "charge_automatically" && inv.auto_advance && inv.attempt_count === 0 && inv.amount_due > 0) invoices.schedulePayment(inv, true);
      else if (inv.status === "open" && inv.attempt_count > 0 && inv.next_payment_attempt) invoices.scheduleRetry(inv);
    }
    refunds.resume();
    if (config.webhookUrl && config.webhookSecret) {
      for (const id of loaded.pendingWebhooks) {
        const event = state.events.get(id);
        if (event) webhooks.deliver(event, config.webhookUrl, config.webhookSecret, true);
      }
    }
  }

  const api = {
    url: base.url,
    port: actualPort,
    /** The state file (absolute path), or null without the `state` option. */
    stateFile,
    /** Writes pending state changes now (no-op without the `state` option). */
    saveState() {
      saver.saveNow();
    },
    async close() {
      if (closed) return;
      closed = true;
      saver.saveNow();
      if (stateFile) process.off("exit", saveOnExit);
      clock.clear();
      for (const s of heldSockets) s.destroy();
      heldSockets.clear();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
    /** The request log (copy). */
    requests() {
      return clone(state.log);
    },
    /** Webhook delivery records (copy). */
    webhooks() {
      return clone(state.webhooks);
    },
    /** How many idempotency keys requests in flight hold (claimed as a request arrives, released with its answer). */
    idempotencyKeysInFlight() {
      return idempotency.inFlightCount();
    },
    /** The emulator's clock: unix seconds. */
    now() {
      return clock.now();
    },
    /** Moves the emulator's clock forward by `seconds`, running every time-based task now due. */
    advanceClock(seconds) {
      const at = clock.advance(seconds);
      changed();
      return at;
    },
    /** Clears all objects, the request log, idempotency keys, webhook records and the rps window; keeps configuration and the clock. */
    reset() {
      clock.clear();
      invoices.clearPending();
      refunds.clearPending();
      for (const k of [...STATE_MAPS, ...OPTIONAL_MAPS]) state[k].clear();
      state.log.length = 0;
      state.webhooks.length = 0;
      state.window.length = 0;
      heldWebhooks.clear();
      changed();
    },
    setFaults({ rate, kinds } = {}) {
      if (rate !== undefined) {
        const r = Number(rate);
        if (!(r >= 0 && r <= 1)) throw new Error("fault rate must be in [0, 1]");
        config.faultRate = r;
      }
      if (kinds !== undefined) config.faultKinds = kinds.map(String);
    },
    /** Fails requests whose path, body or idempotency key contain `match` (`times` of them, or until cleared). */
    addFaultRule({ match, kinds = ["500"], times } = {}) {
      if (typeof match !== "string" || match.length < 4) throw new Error("a fault rule needs a match of at least 4 characters");
      config.faultRules.push({ match, kinds: kinds.map(String), remaining: times === undefined || times === null ? null : Number(times) });
    },
    /** Makes the saved idempotent results of keys containing `match` `seconds` older (pruned past 24 hours); returns how many. */
    ageIdempotencyKeys(match, seconds) {
      if (typeof match !== "string" || match.length < 4) throw new Error("aging keys needs a match of at least 4 characters");
      const s = Number(seconds);
      if (!Number.isFinite(s) || s < 0) throw new Error("seconds must be a number >= 0");
      let aged = 0;
      for (const [k, rec] of state.idempotency) {
        if (!k.split("\0")[1]?.includes(match)) continue;
        rec.at = (rec.at ?? clock.nowMs()) - s * 1000;
        aged++;
      }
      idempotency.prune();
      changed();
      return aged;
    },
    clearFaultRules(match) {
      config.faultRules = match === undefined ? [] : config.faultRules.filter((r) => r.match !== match);
    },
    /** What saving the customer portal settings in Stripe's Dashboard does: the default portal configuration. */
    /** A Stripe Tax registration fixture: `{country, state?, percentage}` (tax.mjs). */
    setTaxRegistration(opts) {
      return app.tax.setRegistration(opts);
    },
    savePortalDefault(opts) {
      const c = portalConfigurations.saveDefault(opts);
      changed();
      return c;
    },
    setRpsLimit(n) {
      config.rpsLimit = Number(n) || 0;
    },
    /** Every API request handled `ms` later (0: at once). */
    setLatency(ms) {
      const n = Number(ms);
      if (!(Number.isFinite(n) && n >= 0)) throw new Error("latency must be a number of ms >= 0");
      config.latencyMs = n;
    },
    setWebhook({ url, secret } = {}) {
      config.webhookUrl = url;
      config.webhookSecret = secret;
    },
  };
  return api;
}
