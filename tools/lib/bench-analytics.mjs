// The analytics phase of `npm run bench` (docs/performance.md, "Analytics"): 10,000 offices × 24
// months of invoices written straight into the database (a fixture: through the API it would take
// hours), then the analytics routes timed against the plain invoice list of the same run.

const DAY = 86_400_000;

/** The first day of the UTC month `back` months before the instant's. */
const monthStartBefore = (at, back) => {
  const d = new Date(at);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 1)).toISOString().slice(0, 10);
};

/**
 * Writes `offices` offices on the plan version, each with `months` monthly invoices ending with
 * the current cycle's draft (2 lines each: patients and base fee); 1 in 20 closed invoices left
 * open with a failed payment, the rest paid. A few statements: the database builds the rows.
 */
export async function seedAnalytics(sql, { planVersionId, offices, months, now }) {
  const first = monthStartBefore(now, months - 1);
  const current = monthStartBefore(now, 0);
  const next = monthStartBefore(now, -1);
  await sql.execute({
    sql: `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
      INSERT INTO offices (id, legal_name, billing_email, time_zone, billing_anchor_day, plan_version_id, status, canceled_at, billing_start, cycle_start, cycle_end, cycle_end_at, created_at, updated_at)
      SELECT 'off_' || lower(hex(randomblob(16))), 'Bench Analytics Clinic ' || i, 'billing@bench.example', 'UTC', 1, ?,
        CASE WHEN i % 50 = 0 THEN 'canceled' ELSE 'active' END, CASE WHEN i % 50 = 0 THEN ? - (i % 300) * ${DAY} END,
        ?, ?, ?, unixepoch(?) * 1000, unixepoch(?) * 1000 + (i % 700) * ${DAY}, ? FROM n`,
    args: [offices - 1, planVersionId, now, first, current, next, next, first, now],
  });
  await sql.execute({
    sql: `WITH RECURSIVE m(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM m WHERE k < ?),
      x AS (SELECT o.id AS office_id, o.rowid AS r, m.k AS k, date(?, '+' || m.k || ' months') AS ps, date(?, '+' || (m.k + 1) || ' months') AS pe,
              20 + (o.rowid * 13 + m.k * 7) % 80 AS p, CASE WHEN m.k = ? THEN 'draft' WHEN (o.rowid + m.k) % 20 = 0 THEN 'open' ELSE 'paid' END AS st
            FROM offices o, m WHERE o.legal_name LIKE 'Bench Analytics Clinic %')
      INSERT INTO invoices (id, office_id, kind, status, currency, period_start, period_end, period_start_at, period_end_at, plan_version_id, billable_patients,
        subtotal, total, amount_paid, finalized_at, paid_at, payment_failed_at, collection_method, updated_at)
      SELECT 'inv_' || lower(hex(randomblob(16))), office_id, 'monthly', st, 'usd', ps, pe, unixepoch(ps) * 1000, unixepoch(pe) * 1000, ?, p,
        4900 + p * 800, 4900 + p * 800, CASE WHEN st = 'paid' THEN 4900 + p * 800 ELSE 0 END,
        CASE WHEN st <> 'draft' THEN unixepoch(pe) * 1000 END, CASE WHEN st = 'paid' THEN unixepoch(pe) * 1000 + 2 * ${DAY} END,
        CASE WHEN st = 'open' THEN unixepoch(pe) * 1000 + ${DAY} END, CASE WHEN st <> 'draft' THEN 'charge_automatically' END, ? FROM x`,
    args: [months - 1, first, first, months - 1, planVersionId, now],
  });
  await sql.execute({
    sql: `INSERT INTO invoice_lines (id, invoice_id, kind, description, quantity, unit_amount, amount, position)
      SELECT 'li_' || lower(hex(randomblob(16))), i.id, 'patients', 'Active patients', i.billable_patients, 800, i.billable_patients * 800, 0
      FROM invoices i JOIN offices o ON o.id = i.office_id WHERE o.legal_name LIKE 'Bench Analytics Clinic %'`,
    args: [],
  });
  await sql.execute({
    sql: `INSERT INTO invoice_lines (id, invoice_id, kind, description, quantity, amount, position)
      SELECT 'li_' || lower(hex(randomblob(16))), i.id, 'base_fee', 'Base fee', 1, 4900, 1
      FROM invoices i JOIN offices o ON o.id = i.office_id WHERE o.legal_name LIKE 'Bench Analytics Clinic %'`,
    args: [],
  });
  const r = await sql.execute({ sql: "SELECT count(*) AS n, (SELECT count(*) FROM invoice_lines) AS l FROM invoices", args: [] });
  return { first, invoices: Number(r.rows[0].n), lines: Number(r.rows[0].l) };
}

/** Median latency (ms) of `times` sequential requests, after one warm-up; every answer must be 200. */
export async function medianMs(request, times = 7) {
  const once = async () => {
    const t = performance.now();
    const res = await request();
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} ${body.slice(0, 300)}`);
    return performance.now() - t;
  };
  await once();
  const all = [];
  for (let i = 0; i < times; i++) all.push(await once());
  all.sort((a, b) => a - b);
  return Math.round(all[Math.floor(all.length / 2)] * 10) / 10;
}

/**
 * The phase: a stack of its own, the fixture, then round trips (counted at the libSQL server) and
 * median latencies of the platform analytics over the 24 months, the office analytics over 24
 * cycles, and the plain invoice list (one office's first page) as the baseline.
 */
export async function phaseAnalytics({ startStack, apiClient, newPlan, roundTrips, log, offices = 10_000, months = 24, now }) {
  log(`phase: analytics over ${offices} offices × ${months} months of invoices (written straight into the database)`);
  const stack = await startStack({ stripe: false, log });
  try {
    const api = apiClient(stack.base, stack.token("platform_admin"));
    const plan = await newPlan(api);
    const planVersionId = plan.versions?.[0]?.id ?? plan.currentVersion?.id ?? (await stack.sql.execute({ sql: "SELECT id FROM plan_versions WHERE plan_id = ?", args: [plan.id] })).rows[0].id;
    const t0 = performance.now();
    const seeded = await seedAnalytics(stack.sql, { planVersionId, offices, months, now });
    log(`seeded ${seeded.invoices} invoices, ${seeded.lines} lines in ${Math.round(performance.now() - t0)} ms`);
    const office = (await stack.sql.execute({ sql: "SELECT id FROM offices WHERE legal_name = 'Bench Analytics Clinic 1'", args: [] })).rows[0].id;
    const get = (path) => () => fetch(`${stack.base}${path}`, { headers: { authorization: `Bearer ${stack.token("platform_admin")}` } });
    const to = new Date(now).toISOString().slice(0, 7);
    const platformPath = `/v1/analytics/platform?from=${seeded.first.slice(0, 7)}&to=${to}`;
    const officePath = `/v1/offices/${office}/analytics?cycles=${months}`;
    const listPath = `/v1/offices/${office}/invoices`;
    const trips = {
      platform_analytics: await roundTrips(stack, get(platformPath), 2),
      office_analytics: await roundTrips(stack, get(officePath), 2),
      list_invoices: await roundTrips(stack, get(listPath), 2),
    };
    const ms = {
      list_invoices: await medianMs(get(listPath)),
      platform_analytics: await medianMs(get(platformPath)),
      platform_analytics_one_plan: await medianMs(get(`${platformPath}&planId=${plan.id}`)),
      office_analytics: await medianMs(get(officePath)),
    };
    const ratio = (x) => Math.round((x / ms.list_invoices) * 10) / 10;
    const result = {
      offices,
      months,
      invoices: seeded.invoices,
      invoice_lines: seeded.lines,
      round_trips: trips,
      median_ms: ms,
      ratio_to_list_invoices: { platform_analytics: ratio(ms.platform_analytics), platform_analytics_one_plan: ratio(ms.platform_analytics_one_plan), office_analytics: ratio(ms.office_analytics) },
    };
    log(`analytics: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await stack.stop();
  }
}
