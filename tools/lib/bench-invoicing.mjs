// The invoicing phases of the benchmark (issue 17 item 6; tools/bench.mjs, docs/performance.md):
// Stripe calls per invoice, the invoicing run of N offices at the emulator's rate limit, and the
// same run with latency on both sides (database and Stripe).
import { loadavg } from "node:os";
import { startStack, pool } from "./stack.mjs";
import { apiClient } from "./api.mjs";
import { newPlan, onboard } from "./bench-load.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");
/** The machine's 1-minute load average (shared with other sessions: recorded with every run). */
const load1 = () => Math.round(loadavg()[0] * 100) / 100;

/**
 * Benchmark fixture: `n` active patients per office written straight into the database (as the
 * office object would record activations dated in the cycle), so 40,000 patients take seconds.
 * Each patient gets its activation event (the history the close bills from, §5.3), its state
 * row, and its place in the draft's billable set, exactly as the office object writes them.
 */
export async function seedPatientsDirect(stack, officeIds, n, lastMonthStart) {
  const at = Date.parse(`${lastMonthStart}T12:00:00Z`);
  for (let i = 0; i < officeIds.length; i += 20) {
    const stmts = [];
    for (const officeId of officeIds.slice(i, i + 20)) {
      const keys = Array.from({ length: n }, () => hex(32));
      stmts.push({ sql: `INSERT INTO patients (office_id, patient_key, active, changed_at) VALUES ${keys.map(() => "(?, ?, 1, ?)").join(",")}`, args: keys.flatMap((k) => [officeId, k, at]) });
      stmts.push({
        sql: `INSERT INTO patient_events (id, office_id, patient_key, kind, event_at, received_at, idempotency_key, request_hash, applied, active_after)
              VALUES ${keys.map(() => "(?, ?, ?, 'activate', ?, ?, ?, ?, 1, 1)").join(",")}`,
        args: keys.flatMap((k) => [`pe_${hex(16)}`, officeId, k, at, at, hex(32), hex(32)]),
      });
      stmts.push({
        sql: `INSERT INTO invoice_patients (invoice_id, office_id, patient_key, counted_at)
              SELECT i.id, ?, p.patient_key, ? FROM invoices i, patients p
              WHERE i.office_id = ? AND i.kind = 'monthly' AND i.status = 'draft' AND p.office_id = ?`,
        args: [officeId, at, officeId, officeId],
      });
    }
    await stack.sql.batch(stmts, "write");
  }
}

/**
 * Waits until `expected` invoices are finalized on Stripe. `onStall` is called when no invoice
 * has closed for STALL_MS while some are still drafts: the local queue (Miniflare's, under
 * `wrangler dev`) has been seen to stop delivering after some batches (docs/performance.md); the
 * bench then triggers the cron again, as the next hourly run would in production.
 */
const STALL_MS = 15_000;
async function waitPushed(stack, where, expected, timeoutMs, onClosed = () => {}, onStall = async () => {}) {
  const deadline = Date.now() + timeoutMs;
  let closed = false;
  let lastClosed = -1;
  let lastChange = Date.now();
  for (;;) {
    const r = await stack.sql.execute({ sql: `SELECT count(*) FILTER (WHERE stripe_state = 'finalized') AS n, count(*) FILTER (WHERE status <> 'draft') AS closed FROM invoices WHERE ${where}`, args: [] });
    const n = Number(r.rows[0].n);
    const nClosed = Number(r.rows[0].closed);
    if (!closed && nClosed >= expected) {
      closed = true;
      onClosed(Date.now());
    }
    if (nClosed !== lastClosed) {
      lastClosed = nClosed;
      lastChange = Date.now();
    } else if (!closed && Date.now() - lastChange > STALL_MS) {
      await onStall();
      lastChange = Date.now();
    }
    if (n >= expected) return Date.now();
    if (Date.now() > deadline) return null;
    await sleep(100);
  }
}

/**
 * One invoicing run: `offices` offices onboarded through the API with `patients` patients each
 * (written as rows), the hourly cron triggered, and the wall time until every invoice is finalized
 * on Stripe. `utilisation` = accepted Stripe calls ÷ wall ÷ the emulator's limit; `wall_ratio` =
 * wall ÷ (calls ÷ limit), the run against the time its calls take at the limit.
 */
async function invoicingRun({ stack, api, plan, offices: nOffices, patients, stripeRps, lastMonthStart, log }) {
  log(`onboarding ${nOffices} offices with ${patients} patients each…`);
  const t0 = Date.now();
  const offices = await pool(Array.from({ length: nOffices }), 16, (_, i) => onboard(api, plan.id, lastMonthStart, i));
  await seedPatientsDirect(stack, offices.map((o) => o.id), patients, lastMonthStart);
  log(`fixture ready in ${Math.round((Date.now() - t0) / 1000)} s`);
  const inRun = `kind = 'monthly' AND period_start = '${lastMonthStart}' AND office_id IN (${offices.map((o) => `'${o.id}'`).join(",")})`;
  await sleep(1000);
  const loadBefore = load1();
  const start = Date.now();
  const trigger = await fetch(`${stack.base}/__scheduled?cron=${encodeURIComponent("5 * * * *")}`);
  log(`cron triggered (${trigger.status}); waiting for ${nOffices} invoices to be finalized on Stripe`);
  let closedAt = null;
  let retriggers = 0;
  const done = await waitPushed(stack, inRun, nOffices, 15 * 60_000, (t) => (closedAt = t), async () => {
    retriggers++;
    log(`no close for ${STALL_MS / 1000} s with offices still open: the cron again (${retriggers})`);
    await fetch(`${stack.base}/__scheduled?cron=${encodeURIComponent("5 * * * *")}`);
  });
  const end = done ?? Date.now();
  const loadAfter = load1();
  const wall = (end - start) / 1000;
  const inWindow = stack.emulator.requests().filter((r) => Date.parse(r.timestamp) >= start && Date.parse(r.timestamp) <= end);
  const calls = inWindow.filter((r) => r.fault === null && r.status === 200).length;
  const firstCall = inWindow.find((r) => r.fault === null);
  const limited = stack.emulator.requests().filter((r) => Date.parse(r.timestamp) >= start && r.fault === "rps_limit").length;
  // The most accepted requests the emulator saw in any sliding second (its own window's measure).
  const accepted = inWindow.filter((r) => r.fault === null).map((r) => Date.parse(r.timestamp)).sort((a, b) => a - b);
  let peak = 0;
  for (let i = 0, j = 0; i < accepted.length; i++) {
    while (accepted[j] <= accepted[i] - 1000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  // Accepted calls per second in each 5-second step after the trigger (where the run fell below the
  // limit: the ramp, the middle or the tail), and the calls by kind (method and path, ids as {id}).
  const timeline = [];
  for (const t of accepted) {
    const i = Math.floor((t - start) / 5000);
    while (timeline.length <= i) timeline.push(0);
    timeline[i]++;
  }
  const byKind = {};
  for (const r of inWindow.filter((r) => r.fault === null)) {
    const kind = `${r.method} ${r.path.replace(/\/(?:[a-z]+_)+[A-Za-z0-9]+/g, "/{id}")}`;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  const pushed = Number((await stack.sql.execute(`SELECT count(*) AS n FROM invoices WHERE ${inRun} AND stripe_state = 'finalized'`)).rows[0].n);
  const stripeInvoices = (await (await fetch(`${stack.emulator.url}/_emulator/invoices`)).json()).data.filter((i) => i.metadata?.invoice_ref);
  const byRef = new Map();
  for (const inv of stripeInvoices) byRef.set(inv.metadata.invoice_ref, (byRef.get(inv.metadata.invoice_ref) ?? 0) + 1);
  const duplicates = [...byRef.values()].reduce((n, c) => n + (c - 1), 0);
  const internalDupes = Number((await stack.sql.execute(`SELECT count(*) - count(DISTINCT office_id) AS n FROM invoices WHERE ${inRun}`)).rows[0].n);
  return {
    offices: nOffices,
    patients_per_office: patients,
    wall_s: Math.round(wall * 10) / 10,
    stripe_calls: calls,
    stripe_rps_limit: stripeRps,
    utilisation: Math.round((calls / wall / stripeRps) * 1000) / 1000,
    wall_ratio: Math.round((wall / (calls / stripeRps)) * 1000) / 1000,
    failed_invoices: nOffices - pushed,
    duplicate_invoices: duplicates + internalDupes,
    rate_limited_answers: limited,
    peak_accepted_per_s: peak,
    // The ramp: the first Stripe call and the last close, seconds after the trigger.
    first_call_s: firstCall ? Math.round((Date.parse(firstCall.timestamp) - start) / 100) / 10 : null,
    all_closed_s: closedAt ? Math.round((closedAt - start) / 100) / 10 : null,
    // Times the cron was triggered again because the local queue stopped delivering (waitPushed).
    cron_retriggers: retriggers,
    load_avg_1m: [loadBefore, loadAfter],
    storage: stack.storage,
    // The last step is shorter than 5 s (it ends with the run): its rate is over its own length.
    accepted_per_s_by_5s: timeline.map((n, i) => Math.round(n / (i === timeline.length - 1 ? Math.max(0.5, wall - 5 * i) : 5))),
    calls_by_kind: byKind,
  };
}

/**
 * Phase 2: Stripe calls per invoice for 1, 40 and 1,000 patients, then (unless `skipRun`) the
 * invoicing run of `offices` offices at the emulator's limit, no latency added.
 */
export async function phaseStripe({ offices, patients, stripeRps, gatewayRps = stripeRps, skipRun, lastMonthStart, log }) {
  log(`phase 2: Stripe calls per invoice and the invoicing run (${offices} offices × ${patients} patients; emulator limit ${stripeRps}/s)`);
  // Webhooks off: on this 2-core machine the emulator's events would take CPU from the run being measured (docs/performance.md).
  const stack = await startStack({ stripe: true, webhooks: false, stripeRps, gatewayRps, log });
  try {
    const api = apiClient(stack.base, stack.token("platform_admin"));
    const plan = await newPlan(api);
    const sizes = [1, 40, 1000];
    const sized = [];
    for (const size of sizes) {
      const office = await onboard(api, plan.id, lastMonthStart);
      await seedPatientsDirect(stack, [office.id], size, lastMonthStart);
      sized.push(office.id);
    }
    const run = await api.post("/v1/admin/invoicing-runs", { officeIds: sized });
    const closedIds = run.offices.flatMap((o) => o.invoices.map((i) => i.invoiceId));
    await waitPushed(stack, `id IN (${closedIds.map((id) => `'${id}'`).join(",")})`, closedIds.length, 120_000);
    const requests = stack.emulator.requests();
    const perInvoice = closedIds.map((id) => requests.filter((r) => (r.idempotencyKey ?? "").includes(id) && r.fault === null).length);
    log(`Stripe calls per invoice (1, 40, 1000 patients): ${perInvoice.join(", ")}`);
    let invoicing = null;
    if (!skipRun) {
      invoicing = { ...(await invoicingRun({ stack, api, plan, offices, patients, stripeRps, lastMonthStart, log })), gateway_rps: gatewayRps };
      log(`invoicing: ${JSON.stringify(invoicing)}`);
    }
    return { stripe_calls_per_invoice: Math.max(...perInvoice), per_size: Object.fromEntries(sizes.map((s, i) => [s, perInvoice[i]])), invoicing };
  } finally {
    await stack.stop();
  }
}

/**
 * The invoicing run with latency on both sides (issue 17 item 6): every database round trip
 * answered `dbLatencyMs` later (the libSQL server's --latency-ms) and every Stripe call `stripeLatencyMs`
 * later (the emulator's latencyMs). With 200 ms per call, 100 calls/s need at least 20 calls in
 * flight: the run must keep that many offices pushing at once. Target: `wall_ratio` ≤ 1.1.
 */
export async function phaseInvoicingLatency({ offices, patients, stripeRps, gatewayRps = stripeRps, dbLatencyMs, stripeLatencyMs, lastMonthStart, log }) {
  log(`phase: the invoicing run of ${offices} offices with ${dbLatencyMs} ms per database round trip and ${stripeLatencyMs} ms per Stripe call (emulator limit ${stripeRps}/s)`);
  const stack = await startStack({ stripe: true, webhooks: false, stripeRps, gatewayRps, dbLatencyMs, stripeLatencyMs, log });
  try {
    const api = apiClient(stack.base, stack.token("platform_admin"));
    const plan = await newPlan(api);
    const result = { ...(await invoicingRun({ stack, api, plan, offices, patients, stripeRps, lastMonthStart, log })), gateway_rps: gatewayRps, db_latency_ms: dbLatencyMs, stripe_latency_ms: stripeLatencyMs };
    log(`invoicing with latency: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await stack.stop();
  }
}

export const invoicingTargets = (invoicing, latency) => [
  ...(invoicing
    ? [
        ["invoicing utilisation", `${invoicing.utilisation} (${invoicing.stripe_calls} calls in ${invoicing.wall_s} s; load ${invoicing.load_avg_1m.join("→")})`, "≥ 0.95", invoicing.utilisation >= 0.95],
        ["failed / duplicate invoices", `${invoicing.failed_invoices} / ${invoicing.duplicate_invoices}`, "0 / 0", invoicing.failed_invoices === 0 && invoicing.duplicate_invoices === 0],
      ]
    : []),
  ...(latency
    ? [
        [`invoicing with latency: wall ÷ (calls ÷ limit)`, `${latency.wall_ratio} (${latency.stripe_calls} calls in ${latency.wall_s} s; load ${latency.load_avg_1m.join("→")})`, "≤ 1.1", latency.wall_ratio <= 1.1],
        ["failed / duplicate invoices (latency run)", `${latency.failed_invoices} / ${latency.duplicate_invoices}`, "0 / 0", latency.failed_invoices === 0 && latency.duplicate_invoices === 0],
      ]
    : []),
];

