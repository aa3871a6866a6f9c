#!/usr/bin/env node
// npm run drill [-- --short] [--only faults,crash,activations,webhooks,fuzz]
// Reliability drills on the local stack (wrangler dev / workerd, the local libSQL server as a
// process that can be killed, the Stripe emulator). Each drill prints its figures and an
// invariant verdict; the process exits non-zero when any invariant breaks.
import { createHash, createHmac } from "node:crypto";
import fc from "fast-check";
import { apiClient } from "./lib/api.mjs";
import { parseCli } from "./lib/cli.mjs";
import { pool, startStack } from "./lib/stack.mjs";
import { now } from "./lib/clock.mjs";
import { carriesSsn, evasiveBillingEmail, guardEvasions, hostileCurrencies, hostileEventTimes, hostileText, undeclaredQuery, zeroWidthSsn } from "./lib/hostile.mjs";

const USAGE = `usage: npm run drill [-- --short] [--only faults,crash,activations,webhooks,fuzz]
Reliability drills on the local stack; exits non-zero when an invariant breaks.
  --short          the short form (fewer offices, requests and runs; what CI runs)
  --only <list>    only these drills, comma-separated: faults, crash, activations, webhooks, fuzz
  -h, --help       this text`;

const { values: args } = parseCli("drill", USAGE, { short: { type: "boolean", default: false }, only: { type: "string" } });
const SHORT = args.short;
const only = args.only ? new Set(args.only.split(",")) : null;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DAY = 86_400_000;
const today = new Date(now()); // tools/lib/clock.mjs: the one "now" of the tools
const lastMonthStart = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, 1)).toISOString().slice(0, 10);
const thisMonthStart = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1)).toISOString().slice(0, 10);
const results = [];
const say = (s) => console.log(`drill: ${s}`);

function verdict(name, figures, failures) {
  results.push({ name, ok: failures.length === 0 });
  console.log(`\n[${failures.length === 0 ? "PASS" : "FAIL"}] ${name}`);
  for (const [k, v] of Object.entries(figures)) console.log(`  ${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`);
  for (const f of failures.slice(0, 10)) console.log(`  broken: ${f}`);
  if (failures.length > 10) console.log(`  … and ${failures.length - 10} more`);
}

async function until(check, timeoutMs, stepMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(stepMs);
  }
}

const one = async (stack, sql, args = []) => (await stack.sql.execute({ sql, args })).rows;

/** Setup calls retried on 503 (the local runtime restarting its Worker mid-request asks for that). */
async function retrying(fn) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 6 || err?.status !== 503) throw err;
      say(`setup call answered 503 (${String(err.message).slice(0, 80)}); retrying`);
      await sleep(500 * attempt);
    }
  }
}

async function newPlan(api, extra = {}) {
  return retrying(() => api.post("/v1/plans", { code: `drill-${Math.random().toString(36).slice(2, 9)}`, name: "Drill", version: { currency: "usd", baseFee: 4900, tiers: [{ upTo: null, unitAmount: 800 }], ...extra } }));
}
const onboard = (api, planId, startsOn, billingEmail = "billing@drill.example") =>
  retrying(() => api.post("/v1/offices", { legalName: "Drill Clinic", billingEmail, timeZone: "UTC", billingAnchorDay: 1, planId, startsOn }));

/** An activation, retried (same idempotency key) until the API answers 200; returns the attempts. */
async function activate(stack, officeId, patientId, occurredAt, { retry = false } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      // The body form (docs/payment-plan.md §5.10): one event, the patient id out of the URL.
      const res = await fetch(`${stack.base}/v1/offices/${officeId}/patient-events`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.token("platform_admin")}`, "content-type": "application/json" },
        body: JSON.stringify({ events: [{ patientId, kind: "activate", occurredAt, idempotencyKey: `${officeId}:${patientId}` }] }),
      });
      if (res.ok) {
        const [result] = (await res.json()).results;
        if (result.status === "applied" || result.status === "replayed") return attempt;
        throw new Error(`activation answered ${result.status} (${result.code})`);
      }
      if (res.status !== 503 && (!retry || res.status < 500)) throw new Error(`activation answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    } catch (err) {
      if (!retry || attempt > 60) throw err;
    }
    await sleep(250);
  }
}

const stripeInvoicesByRef = async (stack) => {
  const data = (await (await fetch(`${stack.emulator.url}/_emulator/invoices`)).json()).data;
  const byRef = new Map();
  for (const inv of data) if (inv.metadata?.invoice_ref) byRef.set(inv.metadata.invoice_ref, [...(byRef.get(inv.metadata.invoice_ref) ?? []), inv]);
  return byRef;
};

/** 1. A billing run while Stripe fails 20% of calls (429, 500, timeouts). */
async function drillFaults(stack, api) {
  const n = SHORT ? 15 : 100;
  const plan = await newPlan(api);
  const offices = await pool(Array.from({ length: n }), 8, () => onboard(api, plan.id, lastMonthStart));
  await pool(offices, 8, (o, i) => activate(stack, o.id, `f${i}`, `${lastMonthStart}T12:00:00Z`));
  stack.emulator.setFaults({ rate: 0.2, kinds: ["429", "500", "timeout"] });
  const started = Date.now();
  const run = await api.post("/v1/admin/invoicing-runs", { officeIds: offices.map((o) => o.id) });
  const ids = run.offices.flatMap((o) => o.invoices.map((i) => i.invoiceId));
  const inList = ids.map((id) => `'${id}'`).join(",");
  const done = await until(async () => Number((await one(stack, `SELECT count(*) n FROM invoices WHERE id IN (${inList}) AND stripe_state = 'finalized'`))[0].n) === ids.length, SHORT ? 180_000 : 600_000, 500);
  stack.emulator.setFaults({ rate: 0 });
  const faults = stack.emulator.requests().filter((r) => Date.parse(r.timestamp) >= started && r.fault && r.fault !== "rps_limit").length;
  const internal = new Map((await one(stack, `SELECT id, total, stripe_state FROM invoices WHERE id IN (${inList})`)).map((r) => [r.id, r]));
  const byRef = await stripeInvoicesByRef(stack);
  const failures = [];
  if (!done) failures.push("not every invoice reached Stripe in time");
  for (const id of ids) {
    const copies = byRef.get(id) ?? [];
    if (copies.length !== 1) failures.push(`${id}: ${copies.length} Stripe invoices`);
    else if (copies[0].amount_due !== Number(internal.get(id).total)) failures.push(`${id}: Stripe ${copies[0].amount_due} ≠ ours ${internal.get(id).total}`);
  }
  verdict("Stripe failing 20% of calls during a billing run", { offices: n, invoices: ids.length, injected_faults: faults, wall_s: Math.round((Date.now() - started) / 100) / 10, stripe_invoices: [...ids].filter((id) => byRef.has(id)).length }, failures);
}

/** 2. The libSQL server killed during a billing run and restarted, then the run repeated. */
async function drillCrash(stack, api) {
  const n = SHORT ? 15 : 60;
  const perOffice = SHORT ? 4 : 10;
  const plan = await newPlan(api);
  const offices = await pool(Array.from({ length: n }), 8, () => onboard(api, plan.id, lastMonthStart));
  const officeIds = offices.map((o) => o.id);
  // Activations keep arriving (and are retried by the client, as the clinical system does) across the crash.
  const acts = officeIds.flatMap((id) => Array.from({ length: perOffice }, (_, j) => [id, `c${j}`]));
  const activations = pool(acts, 16, ([id, p]) => activate(stack, id, p, new Date(now() - 60_000).toISOString(), { retry: true }));
  await sleep(300);
  const cron = () => fetch(`${stack.base}/__scheduled?cron=${encodeURIComponent("5 * * * *")}`).catch(() => null);
  const firstRun = cron();
  await sleep(400);
  stack.killDb();
  say("libSQL server killed");
  await sleep(1500);
  await stack.restartDb();
  say("libSQL server restarted");
  await firstRun;
  await activations;
  await sleep(2000);
  await cron(); // the run, repeated
  const closedOk = await until(async () => Number((await one(stack, `SELECT count(DISTINCT office_id) n FROM invoices WHERE kind = 'monthly' AND period_start = '${lastMonthStart}' AND status != 'draft' AND office_id IN (${officeIds.map((i) => `'${i}'`).join(",")})`))[0].n) === n, 120_000, 1000);
  if (!closedOk) {
    // Messages whose retries are still delayed by the queue: the admin run closes what is left (as an operator would).
    await api.post("/v1/admin/invoicing-runs", { officeIds });
  }
  const rows = await one(stack, `SELECT office_id, count(*) n FROM invoices WHERE kind = 'monthly' AND period_start = '${lastMonthStart}' AND office_id IN (${officeIds.map((i) => `'${i}'`).join(",")}) GROUP BY office_id`);
  const failures = [];
  const perOfficeInvoices = new Map(rows.map((r) => [r.office_id, Number(r.n)]));
  for (const id of officeIds) if (perOfficeInvoices.get(id) !== 1) failures.push(`${id}: ${perOfficeInvoices.get(id) ?? 0} invoices for ${lastMonthStart}`);
  const secret = stack.secrets.PATIENT_KEY_SECRET;
  const keys = await one(stack, `SELECT office_id, patient_key FROM patients WHERE active = 1 AND office_id IN (${officeIds.map((i) => `'${i}'`).join(",")})`);
  const have = new Set(keys.map((k) => `${k.office_id}:${k.patient_key}`));
  let lost = 0;
  for (const [id, p] of acts) if (!have.has(`${id}:${createHmac("sha256", secret).update(`${id}:${p}`).digest("hex")}`)) lost++;
  if (lost) failures.push(`${lost} accepted activations lost`);
  const byRef = await stripeInvoicesByRef(stack);
  const dupes = [...byRef.values()].filter((v) => v.length > 1).length;
  if (dupes) failures.push(`${dupes} invoices duplicated on Stripe`);
  verdict("libSQL server killed during a billing run, restarted, run repeated", { offices: n, activations: acts.length, lost_activations: lost, duplicate_invoices: dupes, closed_by_queue: closedOk }, failures);
}

/** 3. 2,000 activations over 200 offices at concurrency 64. */
async function drillActivations(stack, api) {
  const n = SHORT ? 40 : 200;
  const per = 10;
  const plan = await newPlan(api);
  const offices = await pool(Array.from({ length: n }), 8, () => onboard(api, plan.id, thisMonthStart));
  const acts = offices.flatMap((o) => Array.from({ length: per }, (_, j) => [o.id, `a${j}`]));
  acts.sort(() => Math.random() - 0.5);
  const started = Date.now();
  let errors = 0;
  await pool(acts, 64, ([id, p]) => activate(stack, id, p, new Date(now() - 60_000).toISOString()).catch(() => errors++));
  const wall = (Date.now() - started) / 1000;
  const failures = [];
  await pool(offices, 8, async (o) => {
    const usage = await api.get(`/v1/offices/${o.id}/usage`);
    if (usage.billablePatients !== per) failures.push(`${o.id}: ${usage.billablePatients} patients counted, ${per} activated`);
  });
  if (errors) failures.push(`${errors} activations refused`);
  verdict(`${acts.length} activations over ${n} offices at concurrency 64`, { activations: acts.length, rps: Math.round(acts.length / wall), errors }, failures);
}

/**
 * 4. Webhook events, 30% duplicated, in shuffled order, with correctly signed hostile ones mixed in
 * (issue 14): per invoice, a void carrying its Stripe id but the next office's references (must be
 * rejected, binding_mismatch), and for the failing ones an invoice.paid with an inflated amount
 * (Stripe's invoice is read instead: still open). Neither may change any outcome.
 */
async function drillWebhooks(stack, api) {
  const target = SHORT ? 200 : 1000;
  const scenarios = {
    paid: ["invoice.finalized", "invoice.paid", "invoice.payment_succeeded"],
    failed_then_paid: ["invoice.finalized", "invoice.payment_failed", "invoice.paid"],
    failed: ["invoice.finalized", "invoice.payment_failed"],
    voided: ["invoice.finalized", "invoice.voided"],
  };
  const kinds = Object.keys(scenarios);
  const nInvoices = Math.ceil(target / 2.5); // the scenarios average 2.5 events
  const plan = await newPlan(api, { setupFee: 10_000 });
  // No card on file (their invoices are e-mailed, never charged), so only the drill's events move them.
  const offices = await pool(Array.from({ length: nInvoices }), 8, () => onboard(api, plan.id, thisMonthStart, "billing+decline@drill.example"));
  const officeIds = offices.map((o) => o.id);
  const inOffices = officeIds.map((i) => `'${i}'`).join(",");
  await until(async () => Number((await one(stack, `SELECT count(*) n FROM invoices WHERE kind = 'setup' AND stripe_state = 'finalized' AND office_id IN (${inOffices})`))[0].n) === nInvoices, 300_000, 500);
  const setups = await one(stack, `SELECT id, office_id, total FROM invoices WHERE kind = 'setup' AND office_id IN (${inOffices})`);
  const byRef = await stripeInvoicesByRef(stack);
  const events = [];
  const expected = new Map();
  setups.forEach((inv, i) => {
    const kind = kinds[i % kinds.length];
    expected.set(inv.id, { kind, officeId: inv.office_id });
    const stripe = byRef.get(inv.id)[0];
    const base = Math.floor(Date.now() / 1000) - 1000;
    scenarios[kind].forEach((type, step) => {
      const paid = type === "invoice.paid" || type === "invoice.payment_succeeded";
      const status = paid ? "paid" : type === "invoice.voided" ? "void" : "open";
      events.push({
        id: `evt_drill${inv.id.slice(4, 20)}${step}`,
        object: "event",
        type,
        created: base + step * 10,
        api_version: "2026-02-25.clover",
        livemode: false,
        data: { object: { id: stripe.id, object: "invoice", customer: stripe.customer, status, amount_due: Number(inv.total), amount_paid: paid ? Number(inv.total) : 0, metadata: { office_ref: inv.office_id, invoice_ref: inv.id } } },
      });
    });
  });
  const drafts = new Map((await one(stack, `SELECT office_id, id FROM invoices WHERE kind = 'monthly' AND status = 'draft' AND office_id IN (${inOffices})`)).map((r) => [r.office_id, r.id]));
  const hostile = [];
  setups.forEach((inv, i) => {
    const next = setups[(i + 1) % setups.length];
    const stripe = byRef.get(inv.id)[0];
    const object = (o) => ({ id: stripe.id, object: "invoice", customer: stripe.customer, amount_due: Number(inv.total), ...o });
    const at = Math.floor(Date.now() / 1000) - 2000;
    if (next.id !== inv.id) {
      hostile.push({ id: `evt_drillx${inv.id.slice(4, 20)}`, object: "event", type: "invoice.voided", created: at, api_version: "2026-02-25.clover", livemode: false, data: { object: object({ status: "void", amount_paid: 0, metadata: { office_ref: next.office_id, invoice_ref: next.id } }) } });
    }
    if (expected.get(inv.id).kind === "failed") {
      hostile.push({ id: `evt_drilly${inv.id.slice(4, 20)}`, object: "event", type: "invoice.paid", created: at, api_version: "2026-02-25.clover", livemode: false, data: { object: object({ status: "paid", amount_paid: 999_999_999, metadata: { office_ref: inv.office_id, invoice_ref: inv.id } }) } });
    }
    const draft = drafts.get(inv.office_id);
    if (draft && i % 4 === 0) {
      // Naming the office's current draft (never sent to Stripe): through its real Stripe invoice
      // with the draft as invoice_ref (a mismatch), and through an id we never stored.
      hostile.push({ id: `evt_drillz${inv.id.slice(4, 20)}`, object: "event", type: "invoice.paid", created: at, api_version: "2026-02-25.clover", livemode: false, data: { object: object({ status: "paid", amount_paid: 999_999, metadata: { office_ref: inv.office_id, invoice_ref: draft } }) } });
      hostile.push({ id: `evt_drillw${inv.id.slice(4, 20)}`, object: "event", type: "invoice.paid", created: at, api_version: "2026-02-25.clover", livemode: false, data: { object: { id: `in_drillnever${inv.id.slice(4, 20)}`, object: "invoice", customer: stripe.customer, status: "paid", amount_due: 999_999, amount_paid: 999_999, metadata: { office_ref: inv.office_id, invoice_ref: draft } } } });
    }
    if (next.id !== inv.id && i % 4 === 1) {
      // A refund reported on this office's charge, its metadata naming another office; and one on
      // this office's own invoice, inflated far past what was paid.
      const charge = (o) => ({ id: `ch_drill${inv.id.slice(4, 20)}`, object: "charge", customer: stripe.customer, invoice: stripe.id, amount: Number(inv.total), refunded: true, ...o });
      hostile.push({ id: `evt_drillv${inv.id.slice(4, 20)}`, object: "event", type: "charge.refunded", created: at, api_version: "2026-02-25.clover", livemode: false, data: { object: charge({ amount_refunded: Number(inv.total), metadata: { office_ref: next.office_id, invoice_ref: next.id } }) } });
      hostile.push({ id: `evt_drillu${inv.id.slice(4, 20)}`, object: "event", type: "charge.refunded", created: at, api_version: "2026-02-25.clover", livemode: false, data: { object: charge({ amount_refunded: 999_999_999, metadata: {} }) } });
    }
  });
  const deliveries = [...events, ...events.filter(() => Math.random() < 0.3), ...hostile];
  deliveries.sort(() => Math.random() - 0.5);
  const secret = stack.secrets.STRIPE_WEBHOOK_SECRET;
  // Delivered as Stripe delivers: an answer other than 2xx (or none) is delivered again later —
  // here after 1 s and 2 s — so a transient 5xx or 429 under the drill's load is a redelivery,
  // counted and reported with its status; a delivery never acknowledged, or refused with another
  // 4xx (a signed event is never bad input), fails the drill.
  let bad = 0;
  const redelivered = {};
  await pool(deliveries, 16, async (e) => {
    const body = JSON.stringify(e);
    for (let attempt = 1; ; attempt++) {
      const t = Math.floor(Date.now() / 1000);
      const sig = createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
      const status = await fetch(`${stack.base}/webhooks/stripe`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": `t=${t},v1=${sig}` }, body }).then(
        async (res) => (await res.arrayBuffer(), res.status),
        (err) => `network: ${err?.cause?.code ?? err?.message ?? err}`,
      );
      if (status === 200) return;
      redelivered[status] = (redelivered[status] ?? 0) + 1;
      const transient = typeof status !== "number" || status === 429 || status >= 500;
      if (!transient || attempt === 3) {
        bad++;
        return;
      }
      await sleep(1000 * attempt);
    }
  });
  const ids = [...events, ...hostile].map((e) => `'${e.id}'`).join(",");
  const settled = await until(async () => Number((await one(stack, `SELECT count(*) n FROM webhook_events WHERE id IN (${ids}) AND status = 'received'`))[0].n) === 0, 180_000, 500);
  const invoices = new Map((await one(stack, `SELECT id, status FROM invoices WHERE kind = 'setup' AND office_id IN (${inOffices})`)).map((r) => [r.id, r.status]));
  const officeStatus = new Map((await one(stack, `SELECT id, status FROM offices WHERE id IN (${inOffices})`)).map((r) => [r.id, r.status]));
  // The drill's offices have no card on file: their setup invoices are e-mailed with a due date, so a
  // failed try before it starts no dunning (docs/payment-plan.md §10): the office stays active.
  const want = { paid: ["paid", "active"], failed_then_paid: ["paid", "active"], failed: ["open", "active"], voided: ["void", "active"] };
  const failures = [];
  if (!settled) failures.push("events still waiting to be applied");
  if (bad) failures.push(`${bad} deliveries not acknowledged 200 (answers other than 200: ${JSON.stringify(redelivered)})`);
  const crossed = hostile.filter((e) => e.type === "invoice.voided").map((e) => `'${e.id}'`).join(",");
  if (crossed) {
    const rejected = Number((await one(stack, `SELECT count(*) n FROM webhook_events WHERE id IN (${crossed}) AND status = 'rejected' AND error = 'binding_mismatch'`))[0].n);
    if (rejected !== crossed.split(",").length) failures.push(`${crossed.split(",").length - rejected} cross-office events not rejected (binding_mismatch)`);
  }
  const crossRefunds = hostile.filter((e) => e.id.startsWith("evt_drillv") || e.id.startsWith("evt_drillz")).map((e) => `'${e.id}'`).join(",");
  if (crossRefunds) {
    const rejected = Number((await one(stack, `SELECT count(*) n FROM webhook_events WHERE id IN (${crossRefunds}) AND status = 'rejected' AND error = 'binding_mismatch'`))[0].n);
    if (rejected !== crossRefunds.split(",").length) failures.push(`${crossRefunds.split(",").length - rejected} refund or draft-naming events with mismatched metadata not rejected (binding_mismatch)`);
  }
  // Drafts are never touched by an event; amounts stay bounded (refunded ≤ paid ≤ total).
  const draftIds = [...drafts.values()].map((d) => `'${d}'`).join(",");
  if (draftIds) {
    const moved = await one(stack, `SELECT id, status, amount_paid FROM invoices WHERE id IN (${draftIds}) AND (status != 'draft' OR amount_paid != 0)`);
    if (moved.length) failures.push(`${moved.length} current draft(s) moved by an event (e.g. ${moved[0].status}, paid ${moved[0].amount_paid})`);
  }
  const unbounded = await one(stack, `SELECT count(*) n FROM invoices WHERE office_id IN (${inOffices}) AND (amount_paid > total OR amount_refunded > amount_paid)`);
  if (Number(unbounded[0].n) !== 0) failures.push(`${unbounded[0].n} invoice(s) with paid > total or refunded > paid`);
  for (const [id, { kind, officeId }] of expected) {
    const [inv, office] = want[kind];
    if (invoices.get(id) !== inv || officeStatus.get(officeId) !== office) failures.push(`${kind}: invoice ${invoices.get(id)} (want ${inv}), office ${officeStatus.get(officeId)} (want ${office})`);
  }
  verdict("webhook events, 30% duplicated, shuffled, hostile ones mixed in (cross-office metadata, drafts named, inflated paid and refunded amounts)", { events: events.length, hostile: hostile.length, deliveries: deliveries.length, redelivered: Object.values(redelivered).reduce((a, b) => a + b, 0), invoices: expected.size }, failures);
}

/** 5. Every route fuzzed with malformed and hostile input: no 500, every error problem+json. */
async function drillFuzz(stack, api) {
  const runs = SHORT ? 25 : 200;
  const spec = await (await fetch(`${stack.base}/openapi.json`)).json();
  const plan = await newPlan(api);
  const office = await onboard(api, plan.id, thisMonthStart);
  const hostile = fc.oneof(
    fc.string(),
    fc.fullUnicodeString(),
    fc.constantFrom("' OR 1=1 --", "../../etc/passwd", "%00", "\u0000", "<script>alert(1)</script>", "${jndi:ldap://x}", "Robert'); DROP TABLE offices;--", "x".repeat(5000), "NaN", "-0", "1e309", "😀".repeat(50)),
    fc.constantFrom(office.id, plan.id, "off_00000000000000000000000000000000", "inv_00000000000000000000000000000000", "evt_1"),
    // Issue 14's hostile cases (tools/lib/hostile.mjs).
    fc.constantFrom(...hostileText.map(([, v]) => v), ...guardEvasions.map(([, v]) => v), evasiveBillingEmail, zeroWidthSsn, ...hostileEventTimes, ...hostileCurrencies),
  );
  const json = fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom("amount", "category", "mode", "note", "occurredAt", "planId", "legalName", "billingEmail", "timeZone", "billingAnchorDay", "startsOn", "reason", "officeIds", "date", "at", "dryRun", "code", "name", "version", "when", "__proto__", "constructor"), fc.oneof(fc.jsonValue(), hostile)));
  const failures = [];
  let requests = 0;
  const ops = Object.entries(spec.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => [m, path]));
  for (const [method, path] of ops) {
    await fc.assert(
      fc.asyncProperty(hostile, hostile, json, fc.oneof(fc.constant("json"), fc.constant("raw"), fc.constant("none")), fc.string(), fc.boolean(), fc.boolean(), async (p1, p2, body, shape, raw, authed, withQuery) => {
        // A query on half the requests: an undeclared parameter is refused before the handler, so
        // requests without one reach the validators and handlers.
        const query = withQuery ? `?${encodeURIComponent(p1)}=${encodeURIComponent(p2)}&limit=${encodeURIComponent(p2)}` : "";
        const url = `${stack.base}${path.replace("{officeId}", Math.random() < 0.5 ? office.id : encodeURIComponent(p1)).replace(/\{\w+\}/, encodeURIComponent(p2)).replace(/\{\w+\}/, encodeURIComponent(p1))}${query}`;
        const headers = authed ? { authorization: `Bearer ${stack.token("platform_admin")}` } : { authorization: `Bearer ${p1}` };
        const init = { method: method.toUpperCase(), headers };
        if (method !== "get" && shape !== "none") {
          init.body = shape === "json" ? JSON.stringify(body) : raw;
          init.headers = { ...headers, "content-type": shape === "json" ? "application/json" : "text/plain", "idempotency-key": p2.slice(0, 100) || "k" };
        }
        let res;
        try {
          res = await fetch(url, init);
        } catch {
          return true; // a URL fetch itself refuses to send: nothing reached the API
        }
        requests++;
        const text = await res.text();
        if (res.status >= 500 && !(path === "/health" && res.status === 503)) {
          failures.push(`${method.toUpperCase()} ${path} → ${res.status}: ${text.slice(0, 160)}`);
          return false;
        }
        if (res.status >= 400) {
          const ok = (res.headers.get("content-type") ?? "").startsWith("application/problem+json") && ["type", "title", "status", "detail", "code", "requestId"].every((k) => text.includes(`"${k}"`));
          if (!ok) {
            failures.push(`${method.toUpperCase()} ${path} → ${res.status} not problem+json`);
            return false;
          }
        }
        return true;
      }),
      { numRuns: runs, endOnFailure: true },
    ).catch(() => {});
  }
  verdict("every route fuzzed with malformed and hostile input", { routes: ops.length, requests }, failures);
  await drillHostile(stack, api, spec, office);
}

/**
 * 5b. Issue 14's hostile cases, each with its invariant: refused with 400 problem+json that does
 * not echo it, nothing stored (items 4); identifiers written to evade the PHI guard, in the legal
 * name or as the billing e-mail's local part, are refused at the door (400
 * OFFICE_TEXT_LOOKS_LIKE_PHI) and never reach Stripe (item 5); an audit row forged by SQL with a
 * correct SHA-256 link is reported by verify, and the office and the platform keep working (item 2).
 */
async function drillHostile(stack, api, spec, office) {
  const failures = [];
  const admin = { authorization: `Bearer ${stack.token("platform_admin")}` };
  const post = (path, body, headers = {}) => fetch(`${stack.base}${path}`, { method: "POST", headers: { ...admin, "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  async function refused(what, res, value) {
    const text = await res.text();
    if (res.status !== 400 || !(res.headers.get("content-type") ?? "").startsWith("application/problem+json")) failures.push(`${what}: ${res.status} ${text.slice(0, 120)}`);
    else if (value && value.trim() && text.includes(JSON.stringify(value).slice(1, -1))) failures.push(`${what}: the refusal echoes the value`);
  }
  const plan = await newPlan(api, { setupFee: 10_000 });
  let cases = 0;
  // Item 4: hostile text in every kind of text field.
  for (const [what, value] of [...hostileText, ["zero-width characters between digits", zeroWidthSsn]]) {
    const billingEmail = `hostile-${Math.random().toString(36).slice(2, 10)}@drill.example`;
    await refused(`legal name with ${what}`, await post("/v1/offices", { legalName: value, billingEmail, timeZone: "UTC", billingAnchorDay: 1, planId: plan.id }), value);
    const stored = await one(stack, "SELECT count(*) AS n FROM offices WHERE billing_email = ?", [billingEmail]);
    if (Number(stored[0].n) !== 0) failures.push(`legal name with ${what}: an office was stored`);
    await refused(`plan name with ${what}`, await post("/v1/plans", { code: `h-${Math.random().toString(36).slice(2, 9)}`, name: value, version: { currency: "usd", baseFee: 0, tiers: [{ upTo: null, unitAmount: 1 }] } }), value);
    await refused(`charge note with ${what}`, await post(`/v1/offices/${office.id}/charges`, { amount: 1, category: "other", mode: "add_to_current", note: value.replace(/\n/g, " ") }), value);
    cases += 3;
  }
  for (const currency of hostileCurrencies) {
    await refused(`plan currency ${currency}`, await post("/v1/plans", { code: `h-${Math.random().toString(36).slice(2, 9)}`, name: "Hostile", version: { currency, baseFee: 0, tiers: [{ upTo: null, unitAmount: 1 }] } }));
    cases++;
  }
  for (const occurredAt of hostileEventTimes) {
    await refused(`event dated ${occurredAt}`, await post(`/v1/offices/${office.id}/patients/pt-hostile/activate`, { occurredAt }, { "idempotency-key": `hostile-${occurredAt}` }));
    cases++;
  }
  const old = await one(stack, "SELECT count(*) AS n FROM patient_events WHERE office_id = ? AND event_at < ?", [office.id, Date.parse("1999-01-01T00:00:00Z")]);
  if (Number(old[0].n) !== 0) failures.push("an event dated before every window was stored");
  // Undeclared query parameters, on every route of the reference.
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const method of Object.keys(methods)) {
      const url = `${stack.base}${path.replace("{officeId}", office.id).replace(/\{\w+\}/g, "x")}?${undeclaredQuery}`;
      const res = await fetch(url, { method: method.toUpperCase(), headers: { ...admin, ...(method === "get" ? {} : { "content-type": "application/json" }) }, ...(method === "get" ? {} : { body: "{}" }) });
      await refused(`undeclared query on ${method.toUpperCase()} ${path}`, res, "jane");
      cases++;
    }
  }
  // Item 5: visible text carrying an SSN written to evade a plain match. The office's legal name
  // and billing e-mail go to Stripe, so the guard's own scan refuses them at the door: 400
  // OFFICE_TEXT_LOOKS_LIKE_PHI naming the field, never echoing the value, no office stored.
  let evasive = 0;
  for (const [what, legalName] of [...guardEvasions, ["billing e-mail local part", "Drill Clinic"]]) {
    const billingEmail = what === "billing e-mail local part" ? evasiveBillingEmail : `evasive-${"abcdefgh".split("").sort(() => Math.random() - 0.5).join("")}@drill.example`;
    const res = await post("/v1/offices", { legalName, billingEmail, timeZone: "UTC", billingAnchorDay: 1, planId: plan.id, startsOn: thisMonthStart });
    const text = await res.text();
    const field = what === "billing e-mail local part" ? "billingEmail" : "legalName";
    if (res.status !== 400 || !text.includes('"OFFICE_TEXT_LOOKS_LIKE_PHI"') || !text.includes(`"path":"${field}"`)) failures.push(`office with ${what}: onboarding answered ${res.status} ${text.slice(0, 120)}`);
    else if (carriesSsn(text)) failures.push(`office with ${what}: the refusal echoes the identifier`);
    const stored = await one(stack, "SELECT count(*) AS n FROM offices WHERE billing_email = ?", [billingEmail]);
    if (Number(stored[0].n) !== 0) failures.push(`office with ${what}: an office was stored`);
    evasive++;
    cases++;
  }
  // The control: an office with a clean name, on the same plan, does reach Stripe (so the scan of
  // the emulator's log below sees real requests), and no Stripe request carries the SSN.
  const clean = await retrying(() => api.post("/v1/offices", { legalName: "Drill Control Clinic", billingEmail: "billing@drill.example", timeZone: "UTC", billingAnchorDay: 1, planId: plan.id, startsOn: thisMonthStart }));
  const controlSent = await until(() => stack.emulator.requests().some((r) => `${r.body} ${r.idempotencyKey ?? ""}`.includes(clean.id)), 90_000, 500);
  if (!controlSent) failures.push("the control office's requests never reached the Stripe emulator (the leak check would see nothing)");
  const log = stack.emulator.requests();
  const leaked = log.filter((r) => carriesSsn(`${r.path} ${r.rawQuery} ${r.body} ${r.idempotencyKey ?? ""}`));
  if (leaked.length) failures.push(`${leaked.length} Stripe request(s) carry the SSN`);
  // Item 2: an audit row forged by SQL (what a database token alone can write: the former unkeyed
  // SHA-256 link, correctly chained to the office's head). Verify must report it (200, ok: false,
  // never a 500), and the office and the platform must keep working.
  const forgedOffice = await retrying(() => api.post("/v1/offices", { legalName: "Drill Audit Clinic", billingEmail: "audit@drill.example", timeZone: "UTC", billingAnchorDay: 1, planId: plan.id, startsOn: thisMonthStart }));
  // The new office's outbox writes its own entries meanwhile (its Stripe customer, its invoice):
  // the forged row links to the head as it is at the insert, read again if an entry came first.
  let head;
  let content;
  for (let attempt = 1; attempt <= 20 && !content; attempt++) {
    [head] = await one(stack, "SELECT segment, seq, hash FROM audit_log WHERE chain = ? ORDER BY seq DESC LIMIT 1", [forgedOffice.id]);
    if (!head) break;
    const at = Date.now();
    const forged = { action: "drill.forged", actorRole: "platform_admin", actorSub: "intruder", at, chain: forgedOffice.id, details: null, officeId: forgedOffice.id, outcome: "succeeded", requestId: null, seq: Number(head.seq) + 1, targetIds: [] };
    const hash = createHash("sha256").update(`${head.hash}\n${JSON.stringify(forged)}`).digest("hex");
    try {
      await stack.sql.execute({
        sql: "INSERT INTO audit_log (chain, segment, seq, at, actor_sub, actor_role, action, office_id, target_ids, outcome, key_id, prev_hash, hash) VALUES (?, ?, ?, ?, 'intruder', 'platform_admin', 'drill.forged', ?, '[]', 'succeeded', NULL, ?, ?)",
        args: [forgedOffice.id, head.segment, forged.seq, at, forgedOffice.id, head.hash, hash],
      });
      content = forged;
    } catch (err) {
      if (!/UNIQUE constraint failed: audit_log/.test(String(err?.message))) throw err;
      await new Promise((r) => setTimeout(r, 250)); // the office wrote that seq first: link to its new head
    }
  }
  if (!head) failures.push("forged audit row: the office's chain has no entry to link to");
  else if (!content) failures.push("forged audit row: the office's chain kept moving; no row could be linked to its head");
  else {
    const res = await fetch(`${stack.base}/v1/audit/verify?officeId=${forgedOffice.id}`, { headers: admin });
    const verdictBody = res.status === 200 ? await res.json() : null;
    if (!verdictBody) failures.push(`forged audit row: verify answered ${res.status}`);
    else if (verdictBody.ok !== false || verdictBody.firstBroken?.seq !== content.seq) failures.push(`forged audit row: verify said ${JSON.stringify(verdictBody).slice(0, 160)}`);
    const charge = await post(`/v1/offices/${forgedOffice.id}/charges`, { amount: 100, category: "other", mode: "add_to_current" });
    if (charge.status !== 201) failures.push(`forged audit row: the office's next operation answered ${charge.status}`);
    const planAfter = await post("/v1/plans", { code: `forged-${Math.random().toString(36).slice(2, 9)}`, name: "After forgery", version: { currency: "usd", baseFee: 0, tiers: [{ upTo: null, unitAmount: 1 }] } });
    if (planAfter.status !== 201) failures.push(`forged audit row: a platform operation answered ${planAfter.status}`);
    cases++;
  }
  verdict("issue 14's hostile input refused at ingress, evasive identifiers refused at the door and never sent to Stripe, a forged audit row reported", { cases, evasiveOfficesRefused: evasive, stripeRequestsScanned: log.length }, failures);
}

const drills = { activations: drillActivations, webhooks: drillWebhooks, faults: drillFaults, fuzz: drillFuzz, crash: drillCrash };
const stack = await startStack({ stripe: true, stripeRps: 100, gatewayRps: 95, vars: { STRIPE_OUTBOX_RETRY_MS: "500", STRIPE_TIMEOUT_MS: "1000" }, log: say });
const started = Date.now();
try {
  const api = apiClient(stack.base, stack.token("platform_admin"));
  for (const [name, run] of Object.entries(drills)) {
    if (only && !only.has(name)) continue;
    say(`${name}…`);
    try {
      await run(stack, api);
    } catch (err) {
      verdict(name, {}, [`drill crashed: ${err instanceof Error ? err.stack : err}`]);
      console.log(`worker log (tail):\n${stack.workerLog().split("\n").filter((l) => !l.startsWith("env.")).slice(-25).join("\n")}`);
    }
  }
} finally {
  await stack.stop();
}
const failed = results.filter((r) => !r.ok);
console.log(`\n${Math.round((Date.now() - started) / 1000)} s${SHORT ? ", short form" : ""}`);
console.log(`drills: ${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
