// The activation phases of the benchmark (issue 17; tools/bench.mjs, docs/performance.md).
import { startStack } from "./stack.mjs";
import { apiClient } from "./api.mjs";
import { now } from "./clock.mjs";
import { activate, load, loadHeaders, newPlan, onboard, reportEvents } from "./bench-load.mjs";

/** Events per bulk request in the bulk phase (the route's maximum), and its concurrent requests. */
const BULK_EVENTS = 1000;
const BULK_CONNECTIONS = 4;

/**
 * Activations into one office (issue 17), on a stack of their own whose database answers every
 * round trip `latencyMs` later: GET /health (the HTTP layer's own ceiling on this machine, the
 * baseline), then single reports (the body form, one event per request) into one office from
 * CONNECTIONS connections — group commit writes those that wait together — and, with `bulk`,
 * requests of 1,000 events into one office from BULK_CONNECTIONS connections. Targets: singles
 * ≥ 0.8x the baseline (≥ 0.6x with 30 ms per round trip), bulk ≥ 10,000 events/s.
 */
export async function phaseActivations({ latencyMs, bulk, seconds, connections: CONNECTIONS, log, today }) {
  log(`phase: activations into one office${latencyMs ? ` with ${latencyMs} ms added to every database round trip` : ""} (${CONNECTIONS} connections, ${seconds} s each)`);
  const stack = await startStack({ stripe: false, dbLatencyMs: latencyMs, log });
  try {
    const api = apiClient(stack.base, stack.token("platform_admin"));
    const plan = await newPlan(api);
    const thisMonth = today.toISOString().slice(0, 10);
    const one = await onboard(api, plan.id, thisMonth);
    const at = () => new Date(now() - 60_000).toISOString();
    // Warm-up: modules loaded, connections open, the office's object awake.
    await load((c, n) => activate(stack, one.id, `warm-${c}-${n}`, at()), 2, CONNECTIONS);
    const health = await load(() => fetch(`${stack.base}/health`, { headers: loadHeaders }), seconds, CONNECTIONS);
    log(`GET /health: ${JSON.stringify(health)}`);
    const single = await load((_, n) => activate(stack, one.id, `one-${n}`, at()), seconds, CONNECTIONS);
    log(`single activations into one office: ${JSON.stringify(single)}`);
    const ratio = Math.round((single.rps / health.rps) * 1000) / 1000;
    let bulkResult = null;
    if (bulk) {
      const office = await onboard(api, plan.id, thisMonth);
      let applied = 0;
      let other = 0;
      let batchNo = 0;
      const started = Date.now();
      const run = await load(async () => {
        const b = batchNo++;
        const when = at();
        const res = await reportEvents(stack, office.id, Array.from({ length: BULK_EVENTS }, (_, i) => ({ patientId: `bulk-${b}-${i}`, kind: "activate", occurredAt: when, idempotencyKey: `bulk-${b}-${i}` })));
        if (res.ok) {
          const body = await res.clone().json();
          applied += body.counts.applied;
          other += BULK_EVENTS - body.counts.applied;
        }
        return res;
      }, seconds, BULK_CONNECTIONS);
      const wall = (Date.now() - started) / 1000;
      bulkResult = { requests: run.requests, events_per_request: BULK_EVENTS, connections: BULK_CONNECTIONS, applied, not_applied: other, errors: run.errors, p50_ms: run.p50_ms, p99_ms: run.p99_ms, events_per_s: Math.round(applied / wall) };
      log(`bulk into one office: ${JSON.stringify(bulkResult)}`);
      const counted = (await api.get(`/v1/offices/${office.id}/usage`)).billablePatients;
      if (counted !== applied) log(`WARNING: the bulk office counts ${counted} patients for ${applied} applied activations`);
    }
    const counted = (await api.get(`/v1/offices/${one.id}/usage`)).billablePatients;
    log(`one office: ${counted} patients counted`);
    // The bulk target is absolute; on a loaded machine, events per /health request of the same run says what the HTTP layer allowed.
    if (bulkResult) bulkResult.events_per_health_request = Math.round(bulkResult.events_per_s / health.rps);
    return { latency_ms: latencyMs, health, single, ratio, bulk: bulkResult };
  } finally {
    await stack.stop();
  }
}

/** The figures of the JSON line, from the run without and the run with 30 ms per round trip. */
export const activationFigures = (a0, a30) => ({
  activation_ratio_one_office: a0.ratio,
  activation_ratio_one_office_30ms: a30.ratio,
  bulk_events_per_s_one_office: a0.bulk?.events_per_s ?? null,
  activation_rps_one_office: a0.single.rps,
  activations: { no_latency: a0, db_latency_30ms: a30 },
});
/** Rows of the bench's table: measure, value, target, met. */
export const activationTargets = (f) => [
  ["single activations into one office / GET /health", `${f.activations.no_latency.single.rps}/s vs ${f.activations.no_latency.health.rps}/s (x${f.activation_ratio_one_office})`, "≥ 0.8x", f.activation_ratio_one_office >= 0.8 && f.activations.no_latency.single.errors === 0],
  ["the same, 30 ms per db round trip", `${f.activations.db_latency_30ms.single.rps}/s vs ${f.activations.db_latency_30ms.health.rps}/s (x${f.activation_ratio_one_office_30ms})`, "≥ 0.6x", f.activation_ratio_one_office_30ms >= 0.6 && f.activations.db_latency_30ms.single.errors === 0],
  ["bulk events into one office", `${f.bulk_events_per_s_one_office}/s`, "≥ 10,000/s", (f.bulk_events_per_s_one_office ?? 0) >= 10_000 && f.activations.no_latency.bulk.errors === 0],
];
