// Local Stripe API emulator (subset) for development and tests. Plain ESM, Node built-ins only.
// See README.md in this folder for endpoints, shapes, idempotency, faults, webhooks and control endpoints.
import { createServer } from "node:http";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

export const API_VERSION = "2026-02-25.clover";

const ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
function newId(prefix) {
  const bytes = randomBytes(24);
  let s = "";
  for (const b of bytes) s += ID_CHARS[b % ID_CHARS.length];
  return `${prefix}_${s}`;
}
const now = () => Math.floor(Date.now() / 1000);
const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** Deterministic PRNG (mulberry32). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function seedToInt(seed) {
  if (typeof seed === "number") return seed;
  let h = 2166136261;
  for (const c of String(seed)) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Form decoding with Stripe bracket notation: a[b][0][c]=x, expand[]=y
// ---------------------------------------------------------------------------------------------
export function parseForm(text) {
  const root = {};
  if (!text) return root;
  for (const part of text.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawVal = eq < 0 ? "" : part.slice(eq + 1);
    const key = decodeURIComponent(rawKey.replace(/\+/g, " "));
    const val = decodeURIComponent(rawVal.replace(/\+/g, " "));
    const m = /^([^[\]]+)((?:\[[^\]]*\])*)$/.exec(key);
    const segs = m ? [m[1], ...[...m[2].matchAll(/\[([^\]]*)\]/g)].map((x) => x[1])] : [key];
    let node = root;
    for (let i = 0; i < segs.length; i++) {
      let seg = segs[i];
      const last = i === segs.length - 1;
      if (seg === "") {
        // expand[]=x → append
        seg = String(Object.keys(node).length);
      }
      if (last) node[seg] = val;
      else {
        if (node[seg] === undefined || typeof node[seg] !== "object") node[seg] = {};
        node = node[seg];
      }
    }
  }
  return arrayify(root);
}
function arrayify(v) {
  if (v === null || typeof v !== "object") return v;
  const keys = Object.keys(v);
  for (const k of keys) v[k] = arrayify(v[k]);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => v[k]);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, error, { store = true, headers = {} } = {}) {
    super(error.message);
    this.status = status;
    this.error = error;
    this.store = store; // whether an idempotent result is saved for it
    this.headers = headers;
  }
}
const missing = (param) =>
  new ApiError(
    400,
    { type: "invalid_request_error", code: "parameter_missing", param, message: `Missing required param: ${param}.` },
    { store: false },
  );
const invalid = (message, extra = {}) => new ApiError(400, { type: "invalid_request_error", message, ...extra });
const notFound = (kind, id, param = "id") =>
  new ApiError(404, {
    type: "invalid_request_error",
    code: "resource_missing",
    param,
    message: `No such ${kind}: '${id}'`,
  });

function toInt(v, param) {
  if (v === undefined || v === null || v === "") return undefined;
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isInteger(n)) throw invalid(`Invalid integer: ${v}`, { code: "parameter_invalid_integer", param });
  return n;
}
function toBool(v, param) {
  if (v === undefined || v === "") return undefined;
  if (v === true || v === "true") return true;
  if (v === false || v === "false") return false;
  throw invalid(`Invalid boolean: ${v}`, { code: "parameter_invalid_boolean", param });
}
/** Stripe metadata semantics: empty string unsets a key; empty string for the whole hash clears it. */
function mergeMetadata(current, update) {
  if (update === undefined) return current ?? {};
  if (update === "") return {};
  const out = { ...(current ?? {}) };
  if (typeof update !== "object") return out;
  for (const [k, v] of Object.entries(update)) {
    if (v === "") delete out[k];
    else out[k] = String(v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Object factories (shapes from Stripe's OpenAPI fixtures)
// ---------------------------------------------------------------------------------------------
const nullAddress = () => ({ city: null, country: null, line1: null, line2: null, postal_code: null, state: null });

function makeCustomer(p) {
  const id = newId("cus");
  return {
    id,
    object: "customer",
    address: p.address && typeof p.address === "object" ? { ...nullAddress(), ...p.address } : null,
    balance: 0,
    created: now(),
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
    tax_exempt: p.tax_exempt ?? "none",
    test_clock: null,
  };
}

const INVOICE_PROTECTED = new Set([
  "id", "object", "lines", "status", "amount_due", "amount_paid", "amount_remaining", "total", "subtotal",
  "livemode", "created", "attempt_count", "attempted", "number", "status_transitions", "metadata", "expand",
]);

function makeInvoice(p, customer) {
  const id = newId("in");
  const t = now();
  const inv = {
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
    automatic_tax: { enabled: false, liability: null, status: null, disabled_reason: null, provider: null },
    automatically_finalizes_at: null,
    billing_reason: "manual",
    collection_method: p.collection_method ?? "charge_automatically",
    created: t,
    currency: (p.currency ?? "usd").toLowerCase(),
    custom_fields: p.custom_fields ?? null,
    customer: customer.id,
    customer_account: null,
    customer_address: customer.address,
    customer_email: customer.email,
    customer_name: customer.name,
    customer_phone: customer.phone,
    customer_shipping: customer.shipping,
    customer_tax_exempt: customer.tax_exempt,
    customer_tax_ids: [],
    default_payment_method: p.default_payment_method ?? null,
    default_source: null,
    default_tax_rates: [],
    description: p.description ?? null,
    discounts: [],
    due_date: toInt(p.due_date, "due_date") ?? null,
    effective_at: null,
    ending_balance: null,
    footer: p.footer ?? null,
    from_invoice: null,
    hosted_invoice_url: null,
    invoice_pdf: null,
    issuer: { type: "self" },
    last_finalization_error: null,
    latest_revision: null,
    lines: { object: "list", data: [], has_more: false, total_count: 0, url: `/v1/invoices/${id}/lines` },
    livemode: false,
    metadata: mergeMetadata({}, p.metadata),
    next_payment_attempt: null,
    number: null,
    on_behalf_of: null,
    parent: null,
    payments: { object: "list", data: [], has_more: false, total_count: 0, url: `/v1/invoice_payments` },
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
    statement_descriptor: p.statement_descriptor ?? null,
    status: "draft",
    status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    subscription: null,
    subtotal: 0,
    subtotal_excluding_tax: 0,
    test_clock: null,
    total: 0,
    total_discount_amounts: [],
    total_excluding_tax: 0,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: null,
    // Legacy (pre-basil) convenience fields, filled once a payment is attempted.
    charge: null,
    payment_intent: null,
  };
  // Accept and store any other provided params (e.g. pending_invoice_items_behavior, days_until_due).
  for (const [k, v] of Object.entries(p)) {
    if (!INVOICE_PROTECTED.has(k) && !(k in inv)) inv[k] = v;
  }
  return inv;
}

function recomputeTotals(inv) {
  const sum = inv.lines.data.reduce((a, l) => a + l.amount, 0);
  inv.subtotal = sum;
  inv.subtotal_excluding_tax = sum;
  inv.total = sum;
  inv.total_excluding_tax = sum;
  inv.amount_due = Math.max(0, sum);
  inv.amount_remaining = Math.max(0, inv.amount_due - inv.amount_paid);
  inv.lines.total_count = inv.lines.data.length;
  const starts = inv.lines.data.map((l) => l.period.start);
  const ends = inv.lines.data.map((l) => l.period.end);
  if (starts.length) {
    inv.period_start = Math.min(...starts);
    inv.period_end = Math.max(...ends);
  }
}

function makeLine(inv, l, index) {
  const param = (f) => `lines[${index}][${f}]`;
  if (!l || typeof l !== "object") throw missing(`lines[${index}]`);
  const quantity = toInt(l.quantity, param("quantity")) ?? 1;
  let amount = toInt(l.amount, param("amount"));
  let unit = null;
  if (amount === undefined) {
    const pd = l.price_data;
    unit = pd && typeof pd === "object" ? toInt(pd.unit_amount, param("price_data][unit_amount")) : undefined;
    if (unit === undefined) throw missing(param("amount"));
    amount = unit * quantity;
  }
  const t = now();
  const start = toInt(l.period?.start, param("period][start")) ?? t;
  const end = toInt(l.period?.end, param("period][end")) ?? start;
  const ii = newId("ii");
  return {
    id: newId("il"),
    object: "line_item",
    amount,
    currency: inv.currency,
    description: l.description ?? null,
    discount_amounts: [],
    discountable: toBool(l.discountable, param("discountable")) ?? true,
    discounts: [],
    invoice: inv.id,
    livemode: false,
    metadata: mergeMetadata({}, l.metadata),
    parent: {
      type: "invoice_item_details",
      invoice_item_details: { invoice_item: ii, proration: false, proration_details: { credited_items: null }, subscription: null },
      subscription_item_details: null,
    },
    period: { start, end },
    pretax_credit_amounts: [],
    pricing: { type: "price_details", price_details: null, unit_amount_decimal: String(unit ?? (quantity ? amount / quantity : amount)) },
    quantity,
    quantity_decimal: String(quantity),
    subscription: null,
    subtotal: amount,
    taxes: [],
  };
}

function makeCharge({ amount, currency, customer, invoice, paymentIntent, failed }) {
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
    created: now(),
    currency,
    customer: customer.id,
    description: invoice ? `Payment for Invoice` : null,
    disputed: false,
    failure_balance_transaction: null,
    failure_code: failed ? "card_declined" : null,
    failure_message: failed ? "Your card was declined." : null,
    fraud_details: {},
    invoice: invoice ? invoice.id : null,
    livemode: false,
    metadata: {},
    on_behalf_of: null,
    outcome: failed
      ? { network_status: "declined_by_network", reason: "generic_decline", risk_level: "normal", seller_message: "The bank did not return any further details with this decline.", type: "issuer_declined" }
      : { network_status: "approved_by_network", reason: null, risk_level: "normal", seller_message: "Payment complete.", type: "authorized" },
    paid: !failed,
    payment_intent: paymentIntent,
    payment_method: newId("pm"),
    payment_method_details: { card: { brand: "visa", country: "US", exp_month: 12, exp_year: 2034, funding: "credit", last4: failed ? "0002" : "4242", network: "visa" }, type: "card" },
    receipt_email: null,
    receipt_number: null,
    receipt_url: null,
    refunded: false,
    refunds: { object: "list", data: [], has_more: false, total_count: 0, url: `/v1/charges/${id}/refunds` },
    review: null,
    shipping: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: failed ? "failed" : "succeeded",
    transfer_data: null,
    transfer_group: null,
  };
}

// ---------------------------------------------------------------------------------------------
// State file (optional persistence; see README.md, "State across restarts")
// ---------------------------------------------------------------------------------------------
export const STATE_FORMAT = "stripe-emulator-state";
export const STATE_VERSION = 1;
const STATE_MAPS = ["customers", "invoices", "charges", "paymentIntents", "refunds", "sessions", "events", "idempotency"];

/** The state file of a `state` option: a `.json` path (or an existing file) as is, else `<dir>/state.json`. */
export function stateFilePath(path) {
  const p = resolve(path);
  if (/\.json$/i.test(p) || (existsSync(p) && statSync(p).isFile())) return p;
  return join(p, "state.json");
}

/** Thrown when a state file exists but cannot be loaded; the emulator does not start. */
export class StateFileError extends Error {
  constructor(file, reason) {
    super(`the state file ${file} is unreadable (${reason}); \`npm run dev -- --fresh\` starts the local stack over (or move the file away)`);
    this.name = "StateFileError";
    this.file = file;
  }
}

/** Reads a state file: null when there is none; throws StateFileError when it is unusable. */
function readStateFile(file) {
  if (!existsSync(file)) return null;
  let data;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new StateFileError(file, e?.code ? String(e.code) : `not JSON: ${e?.message ?? e}`);
  }
  if (!data || typeof data !== "object" || data.format !== STATE_FORMAT) throw new StateFileError(file, "not a Stripe emulator state file");
  if (data.version !== STATE_VERSION) throw new StateFileError(file, `format version ${data.version}, this emulator reads ${STATE_VERSION}`);
  for (const k of [...STATE_MAPS, "pendingWebhooks"]) {
    if (!Array.isArray(data[k])) throw new StateFileError(file, `"${k}" is missing or not a list`);
  }
  return data;
}

/** Writes the state file atomically: a temporary file, fsync, rename over the old one, fsync the folder. */
function writeStateFile(file, text) {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  try {
    const dir = openSync(dirname(file), "r");
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // not every platform can fsync a directory
  }
}

/** Idempotency keys are scoped per API key; only a digest of the key is kept (and persisted). */
const keyScope = (apiKey) => createHash("sha256").update(String(apiKey)).digest("hex").slice(0, 16);

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------
export async function startStripeEmulator({
  port = 0,
  host = "127.0.0.1",
  webhookUrl,
  webhookSecret,
  rpsLimit = 100,
  faultRate = 0,
  faultKinds = ["429", "500", "timeout"],
  timeoutMs = 30000,
  seed,
  state: statePath,
  stateSaveDelayMs = 100,
} = {}) {
  const config = {
    webhookUrl,
    webhookSecret,
    rpsLimit,
    faultRate,
    faultKinds: faultKinds.map(String),
    /** Scoped fault rules: { match, kinds, remaining (null = until cleared) }. */
    faultRules: [],
    timeoutMs,
  };
  const random = seed === undefined ? Math.random : mulberry32(seedToInt(seed));

  let state;
  const timers = new Set();
  const heldSockets = new Set();
  function freshState() {
    return {
      customers: new Map(),
      invoices: new Map(),
      charges: new Map(),
      paymentIntents: new Map(), // pi id → charge id
      refunds: new Map(),
      sessions: new Map(),
      events: new Map(),
      idempotency: new Map(), // `${keyScope(apiKey)}\0${key}` → { fingerprint, status, body, requestId }
      log: [],
      webhooks: [],
      window: [], // timestamps (ms) of accepted requests, for the rps limit
    };
  }
  state = freshState();

  // Persistence (only with a `state` path): every object map and the idempotency records, saved
  // at most `stateSaveDelayMs` after a change (longer when a save itself is slow) and on close.
  const stateFile = statePath ? stateFilePath(statePath) : null;
  const loaded = stateFile ? readStateFile(stateFile) : null;
  if (loaded) {
    try {
      for (const k of STATE_MAPS) state[k] = new Map(loaded[k]);
    } catch (e) {
      throw new StateFileError(stateFile, `malformed: ${e?.message ?? e}`);
    }
  }
  /** Pending deliveries loaded while webhooks are off: kept for a later start that has them. */
  const heldWebhooks = new Set(loaded && !(webhookUrl && webhookSecret) ? loaded.pendingWebhooks : []);
  let saveTimer = null;
  let dirty = false;
  let lastSaveMs = 0;
  function snapshot() {
    const out = { format: STATE_FORMAT, version: STATE_VERSION, savedAt: new Date().toISOString() };
    for (const k of STATE_MAPS) out[k] = [...state[k].entries()];
    out.invoices = out.invoices.map(([id, { _pending, ...inv }]) => [id, inv]); // timers are not state
    // Events whose webhook delivery was still being retried: delivered again on the next start.
    out.pendingWebhooks = [...new Set([...heldWebhooks, ...state.webhooks.filter((w) => !w.done).map((w) => w.event_id)])].filter((id) => state.events.has(id));
    return out;
  }
  function saveNow() {
    if (saveTimer) clearTimeout(saveTimer);
    saveTimer = null;
    if (!stateFile || !dirty) return;
    dirty = false;
    const started = Date.now();
    try {
      writeStateFile(stateFile, JSON.stringify(snapshot()));
    } catch (e) {
      dirty = true;
      console.error(`[stripe-emulator] could not save the state to ${stateFile}: ${e?.message ?? e}`);
    }
    lastSaveMs = Date.now() - started;
  }
  function changed() {
    if (!stateFile || closed) return;
    dirty = true;
    if (!saveTimer) {
      saveTimer = setTimeout(saveNow, Math.max(stateSaveDelayMs, 5 * lastSaveMs));
      saveTimer.unref?.();
    }
  }
  const saveOnExit = () => saveNow();
  if (stateFile) {
    // Leftovers of a save interrupted by a crash (the state file itself is never half-written).
    const dir = dirname(stateFile);
    const prefix = `${basename(stateFile)}.tmp-`;
    if (existsSync(dir)) for (const f of readdirSync(dir)) if (f.startsWith(prefix)) rmSync(join(dir, f), { force: true });
  }

  const later = (ms, fn) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
    return t;
  };

  // ------------------------------------------------------------------ webhooks
  function emit(type, object, ctx) {
    const event = {
      id: newId("evt"),
      object: "event",
      api_version: API_VERSION,
      created: now(),
      data: { object: clone(object) },
      livemode: false,
      pending_webhooks: config.webhookUrl && config.webhookSecret ? 1 : 0,
      request: { id: ctx?.requestId ?? null, idempotency_key: ctx?.idempotencyKey ?? null },
      type,
    };
    state.events.set(event.id, event);
    changed();
    if (config.webhookUrl && config.webhookSecret) deliver(event, config.webhookUrl, config.webhookSecret, ctx?.resumed);
    return event;
  }

  /**
   * Posts an event to the webhook URL; a failed attempt is retried 3 times (50, 100, 200 ms). Work
   * resumed from the state file (`patient`) retries 8 times from 250 ms, doubling (about a minute),
   * as the receiver may still be starting.
   */
  function deliver(event, url, secret, patient = false) {
    const record = { event_id: event.id, type: event.type, url, attempts: [], delivered: false, done: false };
    state.webhooks.push(record);
    const payload = JSON.stringify(event, null, 2);
    const attempt = async (n) => {
      const t = now();
      const sig = createHmac("sha256", secret).update(`${t}.${payload}`).digest("hex");
      let status = null;
      let error = null;
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": `t=${t},v1=${sig}`,
          },
          body: payload,
          signal: AbortSignal.timeout(5000),
        });
        status = res.status;
        await res.arrayBuffer().catch(() => {});
      } catch (e) {
        error = String(e?.message ?? e);
      }
      record.attempts.push({ at: Date.now(), status, error });
      if (status !== null && status >= 200 && status < 300) {
        record.delivered = true;
        record.done = true;
        if (event.data?.object?.object === "invoice") {
          const inv = state.invoices.get(event.data.object.id);
          if (inv) inv.webhooks_delivered_at = now();
        }
        changed();
      } else if (closed) {
        // stays pending: with a state file, delivered again on the next start
      } else if (patient ? n < 8 : n < 3) {
        later((patient ? 250 : 50) * 2 ** n, () => attempt(n + 1)); // retries after the first attempt
      } else {
        record.done = true;
        changed();
      }
    };
    attempt(0);
  }

  // ------------------------------------------------------------------ domain logic
  const getCustomer = (id, param = "customer") => {
    const c = state.customers.get(id);
    if (!c) throw notFound("customer", id, param);
    return c;
  };
  const getInvoice = (id) => {
    const i = state.invoices.get(id);
    if (!i) throw notFound("invoice", id, "invoice");
    return i;
  };
  const shouldDecline = (c) =>
    c.metadata?.emulator_outcome === "decline" || (typeof c.email === "string" && c.email.includes("+decline@"));

  function markPaid(inv, ctx) {
    inv.status = "paid";
    inv.amount_paid = inv.amount_due;
    inv.amount_remaining = 0;
    inv.status_transitions.paid_at = now();
    inv.next_payment_attempt = null;
    emit("invoice.paid", inv, ctx);
    emit("invoice.payment_succeeded", inv, ctx);
  }

  /** One payment attempt of an open invoice; returns true when paid. */
  function attemptPayment(inv, ctx) {
    if (inv.status !== "open") return inv.status === "paid";
    const customer = state.customers.get(inv.customer);
    inv.attempt_count += 1;
    inv.attempted = true;
    const failed = shouldDecline(customer);
    const pi = newId("pi");
    const charge = makeCharge({ amount: inv.amount_remaining, currency: inv.currency, customer, invoice: inv, paymentIntent: pi, failed });
    state.charges.set(charge.id, charge);
    state.paymentIntents.set(pi, charge.id);
    inv.charge = charge.id;
    inv.payment_intent = pi;
    inv.payments.data.push({
      id: newId("inpay"),
      object: "invoice_payment",
      amount_paid: failed ? null : charge.amount,
      amount_requested: charge.amount,
      created: now(),
      currency: inv.currency,
      invoice: inv.id,
      is_default: true,
      livemode: false,
      payment: { type: "payment_intent", payment_intent: pi, charge: charge.id },
      status: failed ? "open" : "paid",
      status_transitions: { canceled_at: null, paid_at: failed ? null : now() },
    });
    inv.payments.total_count = inv.payments.data.length;
    if (failed) {
      inv.next_payment_attempt = now() + 3 * 86400;
      emit("invoice.payment_failed", inv, ctx);
      return false;
    }
    markPaid(inv, ctx);
    return true;
  }

  function finalize(inv, ctx) {
    if (inv.status !== "draft") {
      throw invalid(`This invoice is already finalized, you can't re-finalize a non-draft invoice.`, { code: "invoice_not_editable" });
    }
    inv.status = "open";
    const customer = state.customers.get(inv.customer);
    inv.number = `${customer.invoice_prefix}-${String(customer.next_invoice_sequence++).padStart(4, "0")}`;
    inv.status_transitions.finalized_at = now();
    inv.effective_at = now();
    inv.hosted_invoice_url = `${base.url}/invoice/${inv.id}`;
    inv.invoice_pdf = `${base.url}/invoice/${inv.id}/pdf`;
    recomputeTotals(inv);
    emit("invoice.finalized", inv, ctx);
    if (inv.amount_due === 0) {
      markPaid(inv, ctx);
    } else if (inv.collection_method === "charge_automatically") {
      inv.next_payment_attempt = now();
      schedulePayment(inv);
    }
  }

  /** The automatic payment attempt after finalize, 10–50 ms later (also resumed after a restart). */
  function schedulePayment(inv, resumed = false) {
    const delay = 10 + Math.floor(Math.random() * 41);
    inv._pending = later(delay, () => {
      inv._pending = null;
      if (inv.status === "open" && inv.attempt_count === 0) attemptPayment(inv, { requestId: null, idempotencyKey: null, resumed });
    });
  }

  const publicInvoice = (inv) => {
    const { _pending, ...rest } = inv;
    return clone(rest);
  };

  const routes = [];
  const route = (method, pattern, handler) => {
    const keys = [];
    const re = new RegExp(
      "^" + pattern.replace(/:(\w+)/g, (_, k) => (keys.push(k), "([^/]+)")) + "/?$",
    );
    routes.push({ method, re, keys, handler });
  };

  route("POST", "/v1/customers", (p) => {
    const c = makeCustomer(p);
    state.customers.set(c.id, c);
    return clone(c);
  });
  route("GET", "/v1/customers/:id", (_p, { id }) => clone(getCustomer(id, "id")));
  route("POST", "/v1/customers/:id", (p, { id }, ctx) => {
    const c = getCustomer(id, "id");
    const previous = {};
    for (const k of ["name", "email", "description", "phone", "tax_exempt"]) {
      if (p[k] !== undefined) {
        previous[k] = c[k];
        c[k] = p[k] === "" ? null : p[k];
      }
    }
    if (p.address !== undefined) {
      previous.address = c.address;
      c.address = p.address === "" ? null : { ...nullAddress(), ...(c.address ?? {}), ...p.address };
    }
    if (p.metadata !== undefined) {
      previous.metadata = c.metadata;
      c.metadata = mergeMetadata(c.metadata, p.metadata);
    }
    const ev = emit("customer.updated", c, ctx);
    ev.data.previous_attributes = clone(previous);
    return clone(c);
  });

  route("POST", "/v1/invoices", (p) => {
    if (!p.customer) throw missing("customer");
    const c = getCustomer(p.customer);
    if (p.collection_method && !["charge_automatically", "send_invoice"].includes(p.collection_method)) {
      throw invalid(`Invalid collection_method: must be one of charge_automatically or send_invoice`, { param: "collection_method" });
    }
    const inv = makeInvoice(p, c);
    state.invoices.set(inv.id, inv);
    return publicInvoice(inv);
  });
  route("GET", "/v1/invoices/:id", (_p, { id }) => publicInvoice(getInvoice(id)));
  route("POST", "/v1/invoices/:id/add_lines", (p, { id }) => {
    const inv = getInvoice(id);
    if (p.lines === undefined || p.lines === "") throw missing("lines");
    const lines = Array.isArray(p.lines) ? p.lines : [p.lines];
    if (inv.status !== "draft") {
      throw invalid(`You can only add lines to a draft invoice; this invoice is ${inv.status}.`, { code: "invoice_not_editable" });
    }
    const made = lines.map((l, i) => makeLine(inv, l, i)); // validate all before adding any
    inv.lines.data.push(...made);
    recomputeTotals(inv);
    if (p.invoice_metadata !== undefined) inv.metadata = mergeMetadata(inv.metadata, p.invoice_metadata);
    return publicInvoice(inv);
  });
  route("GET", "/v1/invoices/:id/lines", (_p, { id }) => clone(getInvoice(id).lines));
  route("POST", "/v1/invoices/:id/finalize", (_p, { id }, ctx) => {
    const inv = getInvoice(id);
    finalize(inv, ctx);
    return publicInvoice(inv);
  });
  route("POST", "/v1/invoices/:id/void", (_p, { id }, ctx) => {
    const inv = getInvoice(id);
    if (inv.status !== "open") {
      throw invalid(`You can only pass in open or uncollectible invoices. This invoice is ${inv.status}.`, { code: "invoice_not_open" });
    }
    if (inv._pending) clearTimeout(inv._pending), timers.delete(inv._pending), (inv._pending = null);
    inv.status = "void";
    inv.amount_remaining = 0;
    inv.status_transitions.voided_at = now();
    inv.next_payment_attempt = null;
    emit("invoice.voided", inv, ctx);
    return publicInvoice(inv);
  });
  route("POST", "/v1/invoices/:id/pay", (_p, { id }, ctx) => {
    const inv = getInvoice(id);
    if (inv.status === "paid") throw invalid("Invoice is already paid", { code: "invoice_already_paid" });
    if (inv.status === "void") throw invalid("This invoice has been voided and can no longer be paid.", { code: "invoice_not_open" });
    if (inv.status === "draft") finalize(inv, ctx);
    if (inv._pending) clearTimeout(inv._pending), timers.delete(inv._pending), (inv._pending = null);
    if (inv.status === "paid") return publicInvoice(inv);
    if (!attemptPayment(inv, ctx)) {
      throw new ApiError(402, {
        type: "card_error",
        code: "card_declined",
        decline_code: "generic_decline",
        charge: inv.charge,
        message: "Your card was declined.",
      });
    }
    return publicInvoice(inv);
  });

  route("GET", "/v1/charges/:id", (_p, { id }) => {
    const ch = state.charges.get(id);
    if (!ch) throw notFound("charge", id);
    return clone(ch);
  });

  route("POST", "/v1/refunds", (p, _params, ctx) => {
    let charge;
    if (p.charge) {
      charge = state.charges.get(p.charge);
      if (!charge) throw notFound("charge", p.charge, "charge");
    } else if (p.payment_intent) {
      const chId = state.paymentIntents.get(p.payment_intent);
      if (!chId) throw notFound("payment_intent", p.payment_intent, "payment_intent");
      charge = state.charges.get(chId);
    } else throw missing("charge");
    if (charge.status !== "succeeded") {
      throw invalid(`Charge ${charge.id} has not succeeded and cannot be refunded.`, { code: "charge_not_refundable", param: "charge" });
    }
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) {
      throw invalid(`Charge ${charge.id} has already been refunded.`, { code: "charge_already_refunded", param: "charge" });
    }
    const amount = toInt(p.amount, "amount") ?? remaining;
    if (amount <= 0) throw invalid("Refund amount must be positive.", { code: "parameter_invalid_integer", param: "amount" });
    if (amount > remaining) {
      throw invalid(
        `Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`,
        { code: "amount_too_large", param: "amount" },
      );
    }
    const refund = {
      id: newId("re"),
      object: "refund",
      amount,
      balance_transaction: newId("txn"),
      charge: charge.id,
      created: now(),
      currency: charge.currency,
      customer: charge.customer,
      customer_account: null,
      destination_details: { card: { type: "refund" }, type: "card" },
      metadata: mergeMetadata({}, p.metadata),
      payment_intent: charge.payment_intent,
      payment_method: charge.payment_method,
      reason: p.reason ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: "succeeded",
      transfer_reversal: null,
    };
    state.refunds.set(refund.id, refund);
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded >= charge.amount;
    charge.refunds.data.unshift(clone(refund));
    charge.refunds.total_count = charge.refunds.data.length;
    emit("charge.refunded", charge, ctx);
    return clone(refund);
  });
  route("GET", "/v1/refunds/:id", (_p, { id }) => {
    const r = state.refunds.get(id);
    if (!r) throw notFound("refund", id);
    return clone(r);
  });

  route("POST", "/v1/billing_portal/sessions", (p) => {
    if (!p.customer) throw missing("customer");
    getCustomer(p.customer);
    const id = newId("bps");
    const s = {
      id,
      object: "billing_portal.session",
      configuration: "bpc_emulator",
      created: now(),
      customer: p.customer,
      customer_account: null,
      flow: null,
      livemode: false,
      locale: p.locale ?? null,
      on_behalf_of: null,
      return_url: p.return_url ?? null,
      url: `${base.url}/portal/${id}`,
    };
    state.sessions.set(id, s);
    return clone(s);
  });

  route("GET", "/v1/events/:id", (_p, { id }) => {
    const e = state.events.get(id);
    if (!e) throw notFound("event", id);
    return clone(e);
  });

  // ------------------------------------------------------------------ HTTP plumbing
  let closed = false;
  const base = { url: "" };

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

  function clientHeaders(req) {
    const out = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i].toLowerCase();
      let value = req.rawHeaders[i + 1];
      if (name === "authorization") {
        const m = /^(\S+)\s+(sk|rk|pk)_(test|live)_/.exec(value);
        value = m ? `${m[1]} ${m[2]}_${m[3]}_***` : value.split(/\s+/)[0] + " ***";
      }
      out[name] = value;
    }
    return out;
  }

  function apiKeyOf(req) {
    const h = req.headers.authorization;
    if (!h) return { error: "none" };
    let key;
    const bearer = /^Bearer\s+(.+)$/i.exec(h);
    const basic = /^Basic\s+(.+)$/i.exec(h);
    if (bearer) key = bearer[1].trim();
    else if (basic) key = Buffer.from(basic[1], "base64").toString().split(":")[0];
    if (!key) return { error: "none" };
    if (!/^(sk|rk)_test_[A-Za-z0-9_]{3,}$/.test(key)) return { error: "invalid", key };
    return { key };
  }

  async function handleControl(req, res, url, bodyText) {
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
      // Every invoice object (the API has no list endpoint here): id, status, amounts, metadata.
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
      const has = (id) => ["customers", "invoices", "charges", "paymentIntents", "refunds", "sessions", "events"].some((k) => state[k].has(id));
      const counts = Object.fromEntries(["customers", "invoices", "charges", "refunds", "sessions", "events"].map((k) => [k, state[k].size]));
      return send(res, 200, { missing: ids.filter((id) => !has(id)), counts, stateFile });
    }
    if (req.method === "GET" && p === "/_emulator/config") {
      const { webhookSecret: _s, ...rest } = config;
      return send(res, 200, rest);
    }
    if (req.method === "POST" && p === "/_emulator/reset") {
      api.reset();
      return send(res, 200, { ok: true });
    }
    if (req.method === "POST" && p === "/_emulator/faults") {
      const b = json();
      api.setFaults({ rate: b.rate, kinds: b.kinds });
      return send(res, 200, { rate: config.faultRate, kinds: config.faultKinds });
    }
    if (req.method === "POST" && p === "/_emulator/fault-rules") {
      const b = json();
      try {
        if (b.clear) api.clearFaultRules(typeof b.clear === "string" ? b.clear : undefined);
        else api.addFaultRule({ match: b.match, kinds: b.kinds, times: b.times });
      } catch (err) {
        return send(res, 400, { error: { type: "invalid_request_error", message: String(err.message) } });
      }
      return send(res, 200, { rules: clone(config.faultRules) });
    }
    if (req.method === "POST" && p === "/_emulator/rps") {
      api.setRpsLimit(json().limit);
      return send(res, 200, { limit: config.rpsLimit });
    }
    if (req.method === "POST" && p === "/_emulator/webhook") {
      const b = json();
      config.webhookUrl = b.url ?? undefined;
      config.webhookSecret = b.secret ?? undefined;
      return send(res, 200, { url: config.webhookUrl ?? null });
    }
    return send(res, 404, { error: { type: "invalid_request_error", message: `Unknown control endpoint: ${req.method} ${p}` } });
  }

  async function handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const bodyText = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url, "http://emulator");
    if (url.pathname.startsWith("/_emulator/")) return handleControl(req, res, url, bodyText);

    const requestId = newId("req");
    const idempotencyKey = req.headers["idempotency-key"] ?? null;
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
    const reply = (status, body, headers = {}) => {
      entry.status = status;
      send(res, status, body, { "request-id": requestId, ...headers });
    };

    // Simple HTML pages for the portal/hosted invoice links.
    if (req.method === "GET" && /^\/(portal|invoice)\//.test(url.pathname)) {
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
    //    contain the rule's text), then the global random rate.
    const haystack = `${url.pathname}\n${bodyText}\n${idempotencyKey ?? ""}`;
    const rule = config.faultRules.find((r) => r.remaining !== 0 && haystack.includes(r.match));
    let kind = null;
    if (rule) {
      kind = rule.kinds[Math.floor(random() * rule.kinds.length)];
      if (rule.remaining !== null && --rule.remaining <= 0) config.faultRules = config.faultRules.filter((r) => r !== rule);
    } else if (config.faultRate > 0 && config.faultKinds.length && random() < config.faultRate) {
      kind = config.faultKinds[Math.floor(random() * config.faultKinds.length)];
    }
    if (kind !== null) {
      entry.fault = kind;
      if (kind === "429") {
        return reply(429, {
          error: { type: "rate_limit_error", code: "rate_limit", message: "Too many requests hit the API too quickly (injected fault)." },
        });
      }
      if (kind === "500") {
        return reply(
          500,
          { error: { type: "api_error", message: "An unknown error occurred (injected fault)." } },
          { "stripe-should-retry": "true" },
        );
      }
      // timeout: hold the connection then destroy the socket
      entry.status = "timeout";
      const socket = req.socket;
      heldSockets.add(socket);
      later(config.timeoutMs, () => {
        heldSockets.delete(socket);
        socket.destroy();
      });
      return;
    }

    // 3) authentication
    const auth = apiKeyOf(req);
    if (auth.error === "none") {
      return reply(401, {
        error: {
          type: "invalid_request_error",
          message:
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        },
      }, { "www-authenticate": 'Basic realm="Stripe"' });
    }
    if (auth.error === "invalid") {
      const k = String(auth.key);
      const masked = k.length > 12 ? `${k.slice(0, 8)}${"*".repeat(Math.max(0, k.length - 12))}${k.slice(-4)}` : "****";
      return reply(401, { error: { type: "invalid_request_error", code: "api_key_invalid", message: `Invalid API Key provided: ${masked}` } });
    }

    // 4) route
    let match = null;
    let methodMismatch = false;
    for (const r of routes) {
      const m = r.re.exec(url.pathname);
      if (!m) continue;
      if (r.method !== req.method) {
        methodMismatch = true;
        continue;
      }
      match = { r, params: Object.fromEntries(r.keys.map((k, i) => [k, decodeURIComponent(m[i + 1])])) };
      break;
    }
    if (!match) {
      return reply(404, {
        error: {
          type: "invalid_request_error",
          message: methodMismatch
            ? `Unrecognized request URL (${req.method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`
            : `Unrecognized request URL (${req.method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        },
      });
    }

    // 5) idempotency (POST only), scoped per API key
    const useIdem = idempotencyKey && req.method === "POST";
    const scopedKey = useIdem ? `${keyScope(auth.key)}\0${idempotencyKey}` : null;
    const fingerprint = `${req.method} ${url.pathname}\n${bodyText}`;
    if (useIdem) {
      const prev = state.idempotency.get(scopedKey);
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
        return reply(prev.status, prev.body, {
          "idempotent-replayed": "true",
          "original-request": prev.requestId,
          "idempotency-key": idempotencyKey,
        });
      }
    }

    const params =
      req.method === "GET" || req.method === "DELETE"
        ? parseForm(url.search.replace(/^\?/, ""))
        : parseForm(bodyText || url.search.replace(/^\?/, ""));
    const ctx = { requestId, idempotencyKey };
    let status;
    let body;
    let store = true;
    let extraHeaders = {};
    try {
      body = match.r.handler(params, match.params, ctx);
      status = 200;
    } catch (e) {
      if (!(e instanceof ApiError)) {
        console.error("[stripe-emulator] internal error", e);
        e = new ApiError(500, { type: "api_error", message: `Emulator internal error: ${e?.message ?? e}` }, { store: false });
      }
      status = e.status;
      body = { error: { ...e.error, request_log_url: null } };
      store = e.store;
      extraHeaders = e.headers;
    }
    if (useIdem) {
      extraHeaders["idempotency-key"] = idempotencyKey;
      if (store) state.idempotency.set(scopedKey, { fingerprint, status, body, requestId });
    }
    if (req.method !== "GET") changed();
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
      if (inv.status === "open" && inv.collection_method === "charge_automatically" && inv.attempt_count === 0 && inv.amount_due > 0) schedulePayment(inv, true);
    }
    if (config.webhookUrl && config.webhookSecret) {
      for (const id of loaded.pendingWebhooks) {
        const event = state.events.get(id);
        if (event) deliver(event, config.webhookUrl, config.webhookSecret, true);
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
      saveNow();
    },
    async close() {
      if (closed) return;
      closed = true;
      saveNow();
      if (stateFile) process.off("exit", saveOnExit);
      for (const t of timers) clearTimeout(t);
      timers.clear();
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
    /** Clears all objects, the request log, idempotency keys, webhook records and the rps window; keeps configuration. */
    reset() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      state = freshState();
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
    clearFaultRules(match) {
      config.faultRules = match === undefined ? [] : config.faultRules.filter((r) => r.match !== match);
    },
    setRpsLimit(n) {
      config.rpsLimit = Number(n) || 0;
    },
    setWebhook({ url, secret } = {}) {
      config.webhookUrl = url;
      config.webhookSecret = secret;
    },
  };
  return api;
}
