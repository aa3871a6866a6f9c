// @ts-check
// The portfolio's figures, computed from what the API lists: offices (GET /v1/offices) and each
// office's invoices (GET /v1/offices/{id}/invoices). Pure functions (no DOM, no fetch): the
// console draws them, tests/unit/console-portfolio.test.ts checks them.

/** @typedef {import("./api.js").Schemas} Schemas */

const FINALIZED = new Set(["open", "paid", "uncollectible"]);
export const AGE_BUCKETS = [
  { label: "0–30 days", max: 30 },
  { label: "31–60 days", max: 60 },
  { label: "61–90 days", max: 90 },
  { label: "over 90 days", max: Infinity },
];
const DAY_MS = 86_400_000;

/**
 * @param {Pick<Schemas["Office"], "id" | "status">[]} offices
 * @param {Map<string, Schemas["Invoice"][]>} invoicesByOffice  office id → its invoices (the API's Invoice objects)
 * @param {number} now  epoch ms (the clock is an input)
 */
export function portfolio(offices, invoicesByOffice, now) {
  /** @type {Set<string>} */
  const months = new Set();
  /** @type {Map<string, Map<string, number>>} */
  const mrr = new Map(); // currency → month → minor units
  /** @type {Map<string, number>} */
  const patients = new Map(); // month → billable patients
  /** @type {Map<string, number[]>} */
  const ageing = new Map(); // currency → bucket amounts
  /** @type {Record<string, number>} */
  const byStatus = {};
  let openInvoices = 0;
  for (const office of offices) {
    byStatus[office.status] = (byStatus[office.status] ?? 0) + 1;
    for (const inv of invoicesByOffice.get(office.id) ?? []) {
      if (inv.status === "void") continue;
      if (inv.kind === "monthly") {
        const month = inv.periodStart.slice(0, 7);
        months.add(month);
        if (inv.patients) patients.set(month, (patients.get(month) ?? 0) + inv.patients.billable);
        if (FINALIZED.has(inv.status)) {
          const perMonth = mrr.get(inv.currency) ?? new Map();
          perMonth.set(month, (perMonth.get(month) ?? 0) + inv.total);
          mrr.set(inv.currency, perMonth);
        }
      }
      const balance = inv.total - inv.amountPaid;
      if (inv.status === "open" && inv.finalizedAt && balance > 0) {
        openInvoices++;
        const days = Math.max(0, Math.floor((now - Date.parse(inv.finalizedAt)) / DAY_MS));
        const bucket = AGE_BUCKETS.findIndex((b) => days <= b.max);
        const amounts = ageing.get(inv.currency) ?? AGE_BUCKETS.map(() => 0);
        amounts[bucket] = (amounts[bucket] ?? 0) + balance;
        ageing.set(inv.currency, amounts);
      }
    }
  }
  const axis = [...months].sort();
  const currencies = [...new Set([...mrr.keys(), ...ageing.keys()])].sort();
  return {
    months: axis,
    // A month with no finalized invoice in a currency (the current cycles: drafts) has no MRR point.
    mrr: [...mrr.keys()].sort().map((currency) => ({ currency, values: axis.map((m) => mrr.get(currency)?.get(m) ?? null) })),
    billablePatients: axis.map((m) => patients.get(m) ?? 0),
    ageing: [...ageing.keys()].sort().map((currency) => ({ currency, values: ageing.get(currency) ?? [] })),
    currencies,
    offices: { total: offices.length, byStatus },
    openInvoices,
  };
}

/**
 * An office's billable patients per cycle, oldest first, from its monthly invoices (a draft: the running count).
 * @param {Schemas["Invoice"][]} invoices
 * @returns {{ cycle: string, billable: number, running: boolean }[]}
 */
export function patientsPerCycle(invoices) {
  return invoices
    .filter((i) => i.kind === "monthly" && i.status !== "void" && i.patients)
    .sort((a, b) => a.periodStart.localeCompare(b.periodStart))
    .map((i) => ({ cycle: i.periodStart, billable: i.patients?.billable ?? 0, running: i.status === "draft" }));
}

/** @type {("0-30" | "31-60" | "61-90" | "over90")[]} */
const BUCKET_KEYS = ["0-30", "31-60", "61-90", "over90"];

/**
 * The same figures from the platform analytics API (GET /v1/analytics/platform, docs/analytics.md):
 * per cycle month and currency `mrr` (closed) and `mrrProjected` (drafts as they stand),
 * `billablePatients` (summed over currencies: a count), past due by age now. Months before the
 * first with any figure are left out.
 * @param {Schemas["PlatformAnalytics"]} a
 */
export function fromPlatformAnalytics(a) {
  /** @typedef {Schemas["PlatformAnalytics"]["months"][number]} Month */
  const busy = (/** @type {Month} */ m) => m.mrr > 0 || m.mrrProjected > 0 || m.billablePatients > 0;
  const firstBusy = a.months.filter(busy).map((m) => m.month).sort()[0];
  const entries = firstBusy ? a.months.filter((m) => m.month >= firstBusy) : [];
  const axis = [...new Set(entries.map((m) => m.month))].sort();
  const currencies = [...new Set(entries.map((m) => m.currency))].sort();
  /** @type {(field: "mrr" | "mrrProjected", value?: (m: Month) => number | null) => { currency: string, values: (number | null)[] }[]} */
  const series = (field, value = (m) => m[field]) =>
    currencies.map((currency) => ({
      currency,
      values: axis.map((month) => {
        const m = entries.find((e) => e.month === month && e.currency === currency);
        return m ? value(m) : 0;
      }),
    }));
  return {
    months: axis,
    // A month whose cycles are all still open has no closed MRR yet: no point, not a zero.
    mrr: series("mrr", (m) => (m.mrr === 0 && m.mrrProjected > 0 ? null : m.mrr)),
    mrrProjected: series("mrrProjected"),
    billablePatients: axis.map((month) => entries.filter((m) => m.month === month).reduce((n, m) => n + m.billablePatients, 0)),
    ageing: a.pastDue.map((p) => ({ currency: p.currency, values: BUCKET_KEYS.map((k) => p[k] ?? 0) })).filter((p) => p.values.some((v) => v > 0)),
    pastDueInvoices: a.pastDue.reduce((n, p) => n + p.invoices, 0),
    currentCycles: a.currentCycles,
    asOf: a.asOf,
  };
}

/** The last `count` UTC months up to the one of `now` (epoch ms), as the analytics API's `from`/`to`. */
export function monthRange(/** @type {number} */ now, count = 12) {
  const d = new Date(now);
  const month = (/** @type {number} */ y, /** @type {number} */ m) => new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 7);
  return { from: month(d.getUTCFullYear(), d.getUTCMonth() - (count - 1)), to: month(d.getUTCFullYear(), d.getUTCMonth()) };
}
