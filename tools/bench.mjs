#!/usr/bin/env node
// npm run bench [-- --offices 1000 --patients 40 --duration 20 --connections 32 --stripe-rps 100]
// Measures the service on the local stack (wrangler dev / workerd, the local libSQL server, the
// Stripe emulator) and prints a table, then, as its last line, one JSON object (docs/performance.md).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { apiClient } from "./lib/api.mjs";
import { parseCli } from "./lib/cli.mjs";
import { pool, stackDefaults, startStack } from "./lib/stack.mjs";
import { now } from "./lib/clock.mjs";
import { phaseAnalytics } from "./lib/bench-analytics.mjs";
import { activate, load, newPlan, onboard, percentile } from "./lib/bench-load.mjs";
import { activationFigures, activationTargets, phaseActivations as runActivations } from "./lib/bench-activations.mjs";
import { invoicingTargets, phaseInvoicingLatency, phaseStripe as runStripe } from "./lib/bench-invoicing.mjs";

const USAGE = `usage: npm run bench [-- --offices 1000 --patients 40 --duration 20 --connections 32 --stripe-rps 100] [--skip-invoicing] [--invoicing-only] [--latency-offices 1000] [--storage memory|disk] [--gateway-rps <n>] [--flood-only] [--activations-only] [--analytics-only] [--analytics-offices 10000]
Benchmarks on the local stack (wrangler dev, the local libSQL server, the Stripe emulator):
a table, then one JSON line (docs/performance.md).
  --offices <n>       offices invoiced by the cron run (default 1000)
  --patients <n>      active patients per office (default 40)
  --duration <s>      seconds of each load phase (default 20)
  --connections <n>   concurrent connections of the load phases (default 32)
  --stripe-rps <n>    the emulator's request rate limit (default 100)
  --skip-invoicing    skip the invoicing runs (at the limit, and with latency)
  --invoicing-only    only the invoicing phases: Stripe calls per invoice, the run of --offices
                      offices at the emulator's limit, and the run of --latency-offices offices
                      with 20 ms per database round trip and 200 ms per Stripe call
  --latency-offices <n>  offices of the run with latency (default 1000)
  --gateway-rps <n>   the Worker's Stripe pace (STRIPE_MAX_RPS; default --stripe-rps)
  --flood-only        only the flood phase (a platform admin's p99 during unauthenticated floods)
  --activations-only  only the activation phases (one office: single reports against GET /health,
                      also with 30 ms added to every database round trip, and the bulk route)
  --analytics-only    only the analytics phase (its time as a ratio to a plain invoice list)
  --analytics-offices <n>  offices of the analytics fixture, 24 months each (default 10000)
  --storage <where>   memory (default: /dev/shm) or disk: where each stack keeps its database
                      and the local runtime's Durable Object storage (tools/lib/stack.mjs)
  -h, --help          this text`;

const root = fileURLToPath(new URL("..", import.meta.url));
const { values: args } = parseCli("bench", USAGE, {
  offices: { type: "string", default: "1000" },
  patients: { type: "string", default: "40" },
  duration: { type: "string", default: "20" },
  connections: { type: "string", default: "32" },
  "stripe-rps": { type: "string", default: "100" },
  "skip-invoicing": { type: "boolean", default: false },
  "invoicing-only": { type: "boolean", default: false },
  "latency-offices": { type: "string", default: "1000" },
  "gateway-rps": { type: "string" },
  "flood-only": { type: "boolean", default: false },
  "activations-only": { type: "boolean", default: false },
  "analytics-only": { type: "boolean", default: false },
  "analytics-offices": { type: "string", default: "10000" },
  storage: { type: "string", default: "memory" },
});
if (!["memory", "disk"].includes(args.storage)) {
  console.error(`bench: --storage is memory or disk, not ${args.storage}\n${USAGE}`);
  process.exit(2);
}
stackDefaults.storage = /** @type {"memory"|"disk"} */ (args.storage);
const N_OFFICES = Number(args.offices);
const N_PATIENTS = Number(args.patients);
const DURATION_S = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const STRIPE_RPS = Number(args["stripe-rps"]);
const GATEWAY_RPS = args["gateway-rps"] === undefined ? STRIPE_RPS : Number(args["gateway-rps"]);
const log = (s) => console.error(`bench: ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const DAY = 86_400_000;
const today = new Date(now()); // tools/lib/clock.mjs: the one "now" of the tools
const lastMonthStart = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 1, 1)).toISOString().slice(0, 10);
const inLastMonth = (i) => new Date(Date.parse(`${lastMonthStart}T12:00:00Z`) + (i % 25) * DAY).toISOString();
/** Four months back: an office started then whose runs were all missed has 4 cycles to catch up. */
const fourMonthsAgoStart = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 4, 1)).toISOString().slice(0, 10);

/** Waits until the libSQL server has answered no new round trip for `quietMs`. */
async function quiet(stack, quietMs = 400) {
  let last = await stack.pipelines();
  for (;;) {
    await sleep(quietMs);
    const now = await stack.pipelines();
    if (now === last) return now;
    last = now;
  }
}

/** Round trips of one operation, counted at the libSQL server, the most over `times` runs. */
async function roundTrips(stack, op, times = 3) {
  let most = 0;
  for (let i = 0; i < times; i++) {
    const before = await quiet(stack);
    const res = await op(i);
    if (res && !res.ok) throw new Error(`operation failed: ${res.status} ${await res.text()}`);
    const after = await quiet(stack);
    most = Math.max(most, after - before);
  }
  return most;
}


/** Sizes of the flood phase: refused requests per flood, their concurrency, floods, and the admin's pace. */
const FLOOD_REQUESTS = 200;
const FLOOD_CONCURRENCY = 50;
const FLOODS = 12;
const ADMIN_EVERY_MS = 50;
/** A quiet round lasts as long as the median flood round, so both see the same number of probes. */
const QUIET_ROUND_MIN_MS = 300;

/**
 * The admin's probe: GET /v1/plans sent every ADMIN_EVERY_MS (open loop: the next probe leaves on
 * schedule, whether or not the last one has answered, so slow answers never thin the sample)
 * until `until()` resolves; the latency of every probe, and how many did not answer 200.
 */
async function adminProbe(adminPlans, until) {
  const latencies = [];
  let errors = 0;
  let over = false;
  const inFlight = [];
  until.then(() => (over = true));
  while (!over) {
    const t = performance.now();
    inFlight.push(
      adminPlans().then(
        async (res) => {
          await res.arrayBuffer();
          if (res.status !== 200) errors++;
          latencies.push(performance.now() - t);
        },
        () => errors++,
      ),
    );
    await sleep(ADMIN_EVERY_MS);
  }
  await Promise.all(inFlight);
  return { latencies, errors };
}

/**
 * A platform admin's GET /v1/plans, quiet and while floods of unauthenticated requests arrive
 * (issue 14). Measured the same way both times: the admin's open-loop probe (one request every
 * ADMIN_EVERY_MS), over FLOODS rounds. A flood round sends FLOOD_REQUESTS refused requests (a bad
 * token, FLOOD_CONCURRENCY at a time, from the admin's own address) and probes until the last
 * has answered; a quiet round probes as long, with no flood. A third round, the floor, sends the
 * same flood to a path no route matches (404 before any Worker logic): what the runtime itself
 * pays for 200 requests. Rounds alternate (quiet, flood, floor, ...) so a change of the machine's
 * load hits all three. Target: flood p99 within 1.5x of quiet p99.
 */
async function phaseFlood() {
  log(`phase: a platform admin's GET /v1/plans (every ${ADMIN_EVERY_MS} ms) quiet and during ${FLOODS} floods of ${FLOOD_REQUESTS} unauthenticated requests (${FLOOD_CONCURRENCY} at a time)`);
  const stack = await startStack({ stripe: false, log });
  try {
    const api = apiClient(stack.base, stack.token("platform_admin"));
    await newPlan(api);
    const adminPlans = () => fetch(`${stack.base}/v1/plans`, { headers: { authorization: `Bearer ${stack.token("platform_admin")}` } });
    // Warm-up: the first requests load modules and open connections.
    await adminProbe(adminPlans, sleep(1000));
    const quietLat = [];
    const floodLat = [];
    const floorLat = [];
    const floodMs = [];
    const floorMs = [];
    const answers = {};
    let [quietErrors, floodErrors, floorErrors] = [0, 0, 0];
    // The same flood shape, at `path` with `headers`; the admin probing until it is over.
    const floodRound = async (path, headers, durations, counts) => {
      const t = performance.now();
      const flood = pool(Array.from({ length: FLOOD_REQUESTS }), FLOOD_CONCURRENCY, async () => {
        let status = "error";
        try {
          const res = await fetch(`${stack.base}${path}`, { headers });
          await res.arrayBuffer();
          status = res.status;
        } catch {
          // A connection the local proxy dropped: counted, the flood goes on.
        }
        if (counts) counts[status] = (counts[status] ?? 0) + 1;
      }).then(() => durations.push(performance.now() - t));
      return adminProbe(adminPlans, flood);
    };
    for (let round = 0; round < FLOODS; round++) {
      const sorted = [...floodMs].sort((a, b) => a - b);
      const quietMs = Math.max(QUIET_ROUND_MIN_MS, sorted[sorted.length >> 1] ?? 1000);
      const q = await adminProbe(adminPlans, sleep(quietMs));
      quietLat.push(...q.latencies);
      quietErrors += q.errors;
      await sleep(200);
      // The flood of issue 14: unauthenticated requests with a bad token, refused (401, then 429).
      const f = await floodRound("/v1/plans", { authorization: "Bearer flood.not.a-token" }, floodMs, answers);
      floodLat.push(...f.latencies);
      floodErrors += f.errors;
      await sleep(200);
      // The floor: the same flood at a path no route matches (404: no authentication, no audit,
      // no limiter) — what any 200 requests cost this runtime, whatever the Worker does with them.
      const g = await floodRound("/no-such-route", {}, floorMs, null);
      floorLat.push(...g.latencies);
      floorErrors += g.errors;
      log(`round ${round + 1}/${FLOODS}: flood ${Math.round(floodMs.at(-1))} ms, 404 flood ${Math.round(floorMs.at(-1))} ms`);
      await sleep(200);
    }
    const summary = (lat, errors) => {
      lat.sort((a, b) => a - b);
      return { requests: lat.length, p50_ms: percentile(lat, 0.5), p99_ms: percentile(lat, 0.99), errors };
    };
    const median = (xs) => Math.round([...xs].sort((a, b) => a - b)[xs.length >> 1]);
    const quietRun = summary(quietLat, quietErrors);
    const during = summary(floodLat, floodErrors);
    const floor = summary(floorLat, floorErrors);
    const floodShape = { floods: FLOODS, requests_per_flood: FLOOD_REQUESTS, concurrency: FLOOD_CONCURRENCY, admin_every_ms: ADMIN_EVERY_MS, flood_ms_p50: median(floodMs), floor_flood_ms_p50: median(floorMs) };
    const ratio = Math.round((during.p99_ms / quietRun.p99_ms) * 100) / 100;
    const floorRatio = Math.round((floor.p99_ms / quietRun.p99_ms) * 100) / 100;
    log(`admin GET /v1/plans quiet: ${JSON.stringify(quietRun)}; during floods: ${JSON.stringify(during)}; during 404 floods (floor): ${JSON.stringify(floor)}; flood answers ${JSON.stringify(answers)}; ${JSON.stringify(floodShape)}; p99 ratio ${ratio} (floor ${floorRatio})`);
    return { quiet: quietRun, during_flood: during, during_404_flood: floor, flood_answers: answers, shape: floodShape, p99_ratio: ratio, floor_p99_ratio: floorRatio };
  } finally {
    await stack.stop();
  }
}

function bundleSize() {
  const out = mkdtempSync(join(tmpdir(), "bench-bundle-"));
  const wrangler = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");
  const r = spawnSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", out], { cwd: root, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  if (r.status !== 0) {
    log(`wrangler deploy --dry-run failed: ${r.stderr.slice(-500)}`);
    return { gzip: null, raw: null };
  }
  let raw = 0;
  let gz = 0;
  for (const f of readdirSync(out, { recursive: true })) {
    const p = join(out, String(f));
    if (!statSync(p).isFile() || !/\.(m?js|wasm)$/.test(p)) continue;
    const bytes = readFileSync(p);
    raw += bytes.length;
    gz += gzipSync(bytes, { level: 9 }).length;
  }
  rmSync(out, { recursive: true, force: true });
  return { gzip: Math.round((gz / 1024) * 10) / 10, raw: Math.round((raw / 1024) * 10) / 10 };
}

async function phaseDatabase() {
  log("phase 1: database round trips and HTTP load (Worker without a Stripe key: no outbox traffic)");
  const stack = await startStack({ stripe: false, log });
  try {
    const api = apiClient(stack.base, stack.token("platform_admin"));
    const plan = await newPlan(api);
    const office = await onboard(api, plan.id, lastMonthStart);
    const current = await onboard(api, plan.id, today.toISOString().slice(0, 10));
    const invoices = await api.get(`/v1/offices/${office.id}/invoices`);
    const get = (path) => fetch(`${stack.base}${path}`, { headers: { authorization: `Bearer ${stack.token("platform_admin")}` } });
    const post = (path, body) => fetch(`${stack.base}${path}`, { method: "POST", headers: { authorization: `Bearer ${stack.token("platform_admin")}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const trips = {
      activate: await roundTrips(stack, (i) => activate(stack, office.id, `rt-${i}`, inLastMonth(i))),
      deactivate: await roundTrips(stack, (i) => activate(stack, office.id, `rt-${i}`, inLastMonth(i + 1), "deactivate")),
      get_office: await roundTrips(stack, () => get(`/v1/offices/${office.id}`)),
      current_usage: await roundTrips(stack, () => get(`/v1/offices/${office.id}/usage`)),
      list_invoices: await roundTrips(stack, () => get(`/v1/offices/${office.id}/invoices`)),
      get_invoice: await roundTrips(stack, () => get(`/v1/offices/${office.id}/invoices/${invoices.data[0].id}`)),
      one_off_charge: await roundTrips(stack, () => post(`/v1/offices/${office.id}/charges`, { amount: 1500, category: "training", mode: "add_to_current" })),
    };
    // The close of one office, without the admin route's own reads and audit entry (measured on an office with nothing due).
    const routeOverhead = await roundTrips(stack, () => post("/v1/admin/invoicing-runs", { officeIds: [current.id] }), 2);
    const withClose = await roundTrips(stack, () => post("/v1/admin/invoicing-runs", { officeIds: [office.id] }), 1);
    trips.monthly_close = withClose - routeOverhead;
    // A catch-up: an office whose runs were all missed for four cycles, closed by one run (§6.3):
    // each cycle on its own window, still two round trips.
    const behind = await onboard(api, plan.id, fourMonthsAgoStart);
    for (let i = 0; i < 6; i++) await activate(stack, behind.id, `cu-${i}`, new Date(Date.parse(`${fourMonthsAgoStart}T12:00:00Z`) + i * 20 * DAY).toISOString());
    let caughtUp = 0;
    const withCatchUp = await roundTrips(stack, async () => {
      const res = await post("/v1/admin/invoicing-runs", { officeIds: [behind.id] });
      caughtUp = (await res.clone().json()).offices?.[0]?.invoices?.length ?? 0;
      return res;
    }, 1);
    trips.catch_up_close = withCatchUp - routeOverhead;
    log(`round trips: ${JSON.stringify(trips)} (admin route overhead ${routeOverhead}; the catch-up closed ${caughtUp} cycles)`);
    if (caughtUp < 4) throw new Error(`the catch-up closed ${caughtUp} cycles, expected 4`);

    // HTTP under load: 32 connections for the duration, each route against its baseline in this run.
    // Offices whose current cycle holds "now", so each load activation is counted in it.
    const thisMonth = today.toISOString().slice(0, 10);
    const offices = await pool(Array.from({ length: CONNECTIONS }), 8, (_, i) => onboard(api, plan.id, thisMonth, i));
    const viewerGet = (path) => () => get(path);
    const http = {};
    http.health = await load(() => fetch(`${stack.base}/health`), DURATION_S, CONNECTIONS);
    log(`GET /health: ${JSON.stringify(http.health)}`);
    http.list_invoices = await load(viewerGet(`/v1/offices/${office.id}/invoices`), DURATION_S, CONNECTIONS);
    log(`GET list invoices: ${JSON.stringify(http.list_invoices)}`);
    http.activate = await load((c, n) => activate(stack, offices[c].id, `load-${n}`, new Date(now() - 60_000).toISOString()), DURATION_S, CONNECTIONS);
    log(`POST activate (one office per connection): ${JSON.stringify(http.activate)}`);
    for (const k of ["list_invoices", "activate"]) http[k].ratio_to_baseline = Math.round((http[k].rps / http.health.rps) * 1000) / 1000;
    return { trips, http };
  } finally {
    await stack.stop();
  }
}

const pad = (s, n) => String(s).padEnd(n);
const started = Date.now();
const floodTarget = (f) => ["admin p99 during unauthenticated floods", `${f.during_flood.p99_ms} ms vs ${f.quiet.p99_ms} ms quiet (x${f.p99_ratio}; 404 floor x${f.floor_p99_ratio})`, "≤ 1.5x", f.p99_ratio <= 1.5 && f.during_flood.errors === 0 && f.quiet.errors === 0];
if (args["flood-only"]) {
  const flood = await phaseFlood();
  const [name, value, target, met] = floodTarget(flood);
  console.log(`\n${pad(name, 48)}${pad(value, 44)}${pad(target, 14)}${met ? "yes" : "NO"}\n`);
  console.log(JSON.stringify({ flood }));
  process.exit(0);
}
const phaseActivations = (latencyMs, bulk) => runActivations({ latencyMs, bulk, seconds: Math.min(DURATION_S, 10), connections: CONNECTIONS, log, today });
if (args["activations-only"]) {
  const figures = activationFigures(await phaseActivations(0, true), await phaseActivations(30, false));
  console.log(`\n${pad("measure", 52)}${pad("value", 44)}${pad("target", 14)}met`);
  for (const [name, value, target, met] of activationTargets(figures)) console.log(`${pad(name, 52)}${pad(value, 44)}${pad(target, 14)}${met ? "yes" : "NO"}`);
  console.log("");
  console.log(JSON.stringify(figures));
  process.exit(0);
}
const invoicingArgs = { patients: N_PATIENTS, stripeRps: STRIPE_RPS, gatewayRps: GATEWAY_RPS, lastMonthStart, log };
const runLatency = () => phaseInvoicingLatency({ ...invoicingArgs, offices: Number(args["latency-offices"]), dbLatencyMs: 20, stripeLatencyMs: 200 });
if (args["invoicing-only"]) {
  const stripe = await runStripe({ ...invoicingArgs, offices: N_OFFICES, skipRun: args["skip-invoicing"] });
  const latency = args["skip-invoicing"] ? null : await runLatency();
  console.log(`\n${pad("measure", 52)}${pad("value", 60)}${pad("target", 10)}met`);
  for (const [name, value, target, met] of [["Stripe calls per invoice (1/40/1000 patients)", Object.values(stripe.per_size).join("/"), "≤ 3", stripe.stripe_calls_per_invoice <= 3], ...invoicingTargets(stripe.invoicing, latency)]) {
    console.log(`${pad(name, 52)}${pad(value, 60)}${pad(target, 10)}${met ? "yes" : "NO"}`);
  }
  console.log("");
  console.log(JSON.stringify({ stripe_calls_per_invoice: stripe.stripe_calls_per_invoice, invoicing: stripe.invoicing, invoicing_latency: latency }));
  process.exit(0);
}
const runAnalytics = () => phaseAnalytics({ startStack, apiClient, newPlan, roundTrips, log, offices: Number(args["analytics-offices"]), now: now() });
if (args["analytics-only"]) {
  const analytics = await runAnalytics();
  const met = Object.values(analytics.round_trips).every((n) => n <= 2);
  console.log(`\n${pad("db round trips, analytics (platform / office)", 48)}${pad(`${analytics.round_trips.platform_analytics} / ${analytics.round_trips.office_analytics}`, 44)}${pad("≤ 2", 14)}${met ? "yes" : "NO"}`);
  console.log(`${pad("analytics time ÷ list invoices (platform / office)", 48)}${pad(`${analytics.ratio_to_list_invoices.platform_analytics} / ${analytics.ratio_to_list_invoices.office_analytics}`, 44)}\n`);
  console.log(JSON.stringify({ analytics }));
  process.exit(0);
}
const db = await phaseDatabase();
const activations = activationFigures(await phaseActivations(0, true), await phaseActivations(30, false));
const flood = await phaseFlood();
const analytics = await runAnalytics();
const stripe = await runStripe({ ...invoicingArgs, offices: N_OFFICES, skipRun: args["skip-invoicing"] });
const invoicingLatency = args["skip-invoicing"] ? null : await runLatency();
log("bundle: wrangler deploy --dry-run");
const bundle = bundleSize();
const result = {
  db_round_trips: db.trips,
  stripe_calls_per_invoice: stripe.stripe_calls_per_invoice,
  invoicing: stripe.invoicing,
  invoicing_latency: invoicingLatency,
  http: db.http,
  ...activations,
  flood,
  analytics,
  bundle_gzip_kib: bundle.gzip,
  bundle_raw_kib: bundle.raw,
  startup_ms: null,
};
const targets = [
  ["db round trips, single-office operations", Object.entries(db.trips).filter(([k]) => !k.endsWith("_close")).map(([k, v]) => `${k} ${v}`).join(", "), "1 each", Object.entries(db.trips).every(([k, v]) => (k.endsWith("_close") ? v <= 2 : v <= 1))],
  ["db round trips, monthly close", db.trips.monthly_close, "≤ 2", db.trips.monthly_close <= 2],
  ["db round trips, catch-up close of 4 cycles", db.trips.catch_up_close, "≤ 2", db.trips.catch_up_close <= 2],
  ["Stripe calls per invoice (1/40/1000 patients)", Object.values(stripe.per_size).join("/"), "≤ 3", stripe.stripe_calls_per_invoice <= 3],
  ...invoicingTargets(stripe.invoicing, invoicingLatency),
  ...activationTargets(activations),
  floodTarget(flood),
  ["db round trips, analytics (platform / office)", `${analytics.round_trips.platform_analytics} / ${analytics.round_trips.office_analytics}`, "≤ 2", Object.values(analytics.round_trips).every((n) => n <= 2)],
  ["bundle (gzip)", `${bundle.gzip} KiB`, "≤ 1024 KiB", bundle.gzip !== null && bundle.gzip <= 1024],
];
console.log(`\n${pad("measure", 48)}${pad("value", 44)}${pad("target", 14)}met`);
for (const [name, value, target, met] of targets) console.log(`${pad(name, 48)}${pad(value, 44)}${pad(target, 14)}${met ? "yes" : "NO"}`);
console.log(`\n${pad("HTTP (32 connections)", 26)}${pad("rps", 8)}${pad("p50 ms", 9)}${pad("p99 ms", 9)}${pad("errors", 8)}ratio`);
for (const [k, v] of Object.entries(db.http)) console.log(`${pad(k, 26)}${pad(v.rps, 8)}${pad(v.p50_ms, 9)}${pad(v.p99_ms, 9)}${pad(v.errors, 8)}${v.ratio_to_baseline ?? "1 (baseline)"}`);
console.log(`activations into one office: ${activations.activation_rps_one_office}/s (x${activations.activation_ratio_one_office} of GET /health; x${activations.activation_ratio_one_office_30ms} with 30 ms per db round trip); bulk ${activations.bulk_events_per_s_one_office} events/s; total bench time ${Math.round((Date.now() - started) / 1000)} s\n`);
console.log(JSON.stringify(result));
