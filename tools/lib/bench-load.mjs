// Load helpers of the benchmark (tools/bench.mjs): plans and offices through the API, patient
// reports in the body form, and closed-loop load with latency percentiles.

export async function newPlan(api) {
  return api.post("/v1/plans", {
    code: `bench-${Math.random().toString(36).slice(2, 9)}`,
    name: "Bench",
    version: { currency: "usd", baseFee: 4900, tiers: [{ upTo: 50, unitAmount: 800 }, { upTo: 200, unitAmount: 600 }, { upTo: null, unitAmount: 400 }] },
  });
}
export const onboard = (api, planId, startsOn, i = 0) =>
  api.post("/v1/offices", { legalName: `Bench Clinic ${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(65 + ((i / 26) | 0) % 26)}`, billingEmail: "billing@bench.example", timeZone: "UTC", billingAnchorDay: 1, planId, startsOn });

/** One report in the body form (a request with one event; docs/payment-plan.md §5.10). */
export function activate(stack, officeId, patientId, occurredAt, kind = "activate") {
  return reportEvents(stack, officeId, [{ patientId, kind, occurredAt, idempotencyKey: `${officeId}-${patientId}-${kind}` }]);
}

/**
 * Headers of the load phases' requests. `accept-encoding: identity`: the local runtime compresses
 * a JSON answer for a client that accepts gzip, as Cloudflare's edge does, but on the Worker's own
 * thread (a bulk answer of 1,000 results: deflate was ~4% of workerd's CPU under perf), where on
 * Cloudflare it costs the Worker nothing; and the bench would spend its own CPU inflating it.
 */
export const loadHeaders = { "accept-encoding": "identity" };

export function reportEvents(stack, officeId, events) {
  return fetch(`${stack.base}/v1/offices/${officeId}/patient-events`, {
    method: "POST",
    headers: { ...loadHeaders, authorization: `Bearer ${stack.token("platform_admin")}`, "content-type": "application/json" },
    body: JSON.stringify({ events }),
  });
}


/** `connections` loops sending requests for `seconds`; latencies in ms. */
export async function load(makeRequest, seconds, connections) {
  const latencies = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  let n = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: connections }, async (_, c) => {
      while (Date.now() < end) {
        const t = performance.now();
        try {
          const res = await makeRequest(c, n++);
          await res.arrayBuffer();
          if (res.status >= 500 || res.status === 0) errors++;
          else if (res.status >= 400) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  const wall = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { requests: latencies.length, rps: Math.round(latencies.length / wall), p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99), errors };
}

export const percentile = (sorted, p) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] * 10) / 10;
