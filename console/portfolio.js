// @ts-check
// The platform admin's portfolio: MRR trend, billable patients per month, past-due ageing. From
// the platform analytics API (GET /v1/analytics/platform) where the Worker has it; otherwise
// computed in the page from the office list and each office's invoices (at most 500 offices).
import { allPages, api, hasRoute, ok } from "./api.js";
import { drawChart } from "./charts.js";
import { h, major, money, show } from "./dom.js";
import { AGE_BUCKETS, fromPlatformAnalytics, monthRange, portfolio } from "./portfolio-data.js";

const MAX_OFFICES = 500;
const MAX_INVOICES = 100;
/** Offices counted for the tiles (beyond: "1000+"). */
const MAX_COUNTED = 1000;

/**
 * `fn` over `items`, at most `limit` at a time, answers in order.
 * @template T, U
 * @param {T[]} items @param {number} limit @param {(item: T) => Promise<U>} fn
 * @returns {Promise<U[]>}
 */
async function mapLimited(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

/** The analytics API's figures, or null when this Worker has no such route (its OpenAPI document says). */
async function analytics() {
  if (!(await hasRoute("/v1/analytics/platform"))) return null;
  const { from, to } = monthRange(Date.now());
  return fromPlatformAnalytics(await ok(api.GET("/v1/analytics/platform", { params: { query: { from, to } } })));
}

/** The figures computed here from the office list and every office's invoices. */
async function computed() {
  const { items: offices, truncated } = await allPages((cursor) => ok(api.GET("/v1/offices", { params: { query: { limit: 200, cursor } } })), MAX_OFFICES);
  const lists = await mapLimited(offices, 6, (o) => ok(api.GET("/v1/offices/{officeId}/invoices", { params: { path: { officeId: o.id }, query: { limit: MAX_INVOICES } } })).then((p) => p.data));
  const p = portfolio(offices, new Map(offices.map((o, i) => [o.id, lists[i]])), Date.now());
  return { ...p, truncated };
}

/**
 * How many offices (with `status`, if given): up to MAX_COUNTED, then "1000+".
 * @param {import("./api.js").Schemas["Office"]["status"]} [status]
 */
const count = async (status) => {
  const { items, truncated } = await allPages((cursor) => ok(api.GET("/v1/offices", { params: { query: { limit: 200, status, cursor } } })), MAX_COUNTED);
  return truncated ? `${MAX_COUNTED}+` : String(items.length);
};

/**
 * One text per currency, joined.
 * @template S
 * @param {S[]} series @param {(s: S) => string | null} pick
 */
const perCurrency = (series, pick) => series.map((s) => pick(s)).filter(Boolean).join(" · ");

/**
 * The portfolio's figures, from either source (a series per currency; money in minor units).
 * @typedef {{ currency: string, values: (number | null)[] }} Series
 * @typedef {{
 *   months: string[], mrr: Series[], mrrProjected: Series[], billablePatients: number[],
 *   ageing: { currency: string, values: number[] }[],
 *   currentCycles: import("./api.js").Schemas["PlatformAnalytics"]["currentCycles"], asOf: string, truncated: boolean,
 * }} Figures
 */

/** @param {HTMLElement} view */
export async function renderPortfolio(view) {
  show(view, h("h1", {}, "Portfolio"), h("p", { class: "note" }, "Loading…"));
  const [figures, offices, pastDueOffices] = await Promise.all([analytics(), count(), count("past_due")]);
  const fromApi = figures !== null;
  // One shape for both sources: what only one has is empty in the other (`fromApi` says which).
  /** @type {Figures} */
  const p = figures ? { ...figures, truncated: false } : { ...(await computed()), mrrProjected: [], currentCycles: [], asOf: "" };

  const kpi = (/** @type {string} */ label, /** @type {string} */ value, /** @type {string} */ test) => h("div", { class: "card kpi", "data-test": test }, h("div", { class: "value" }, value), h("div", { class: "label" }, label));
  const mrrKpi = fromApi
    ? kpi("MRR of the current cycles, as they stand", perCurrency(p.currentCycles, (c) => money(c.mrrProjected, c.currency)) || "—", "kpi-mrr")
    : kpi("MRR, last finalized month", perCurrency(p.mrr, (s) => {
        const i = s.values.findLastIndex((v) => v !== null);
        return i < 0 ? null : `${money(/** @type {number} */ (s.values[i]), s.currency)} (${p.months[i]})`;
      }) || "—", "kpi-mrr");
  const unpaid = perCurrency(p.ageing, (s) => money(s.values.reduce((a, b) => a + b, 0), s.currency)) || money(0, "usd");

  const mrrBox = h("div", { class: "chart", "data-test": "chart-mrr", "aria-label": "MRR by month" });
  const patientsBox = h("div", { class: "chart", "data-test": "chart-patients", "aria-label": "Billable patients by month" });
  const ageingBox = h("div", { class: "chart", "data-test": "chart-ageing", "aria-label": "Past-due ageing" });
  show(
    view,
    h("h1", {}, "Portfolio"),
    h(
      "div",
      { class: "kpis" },
      kpi("offices", offices, "kpi-offices"),
      kpi("offices past due", pastDueOffices, "kpi-past-due-offices"),
      mrrKpi,
      kpi(`billable patients${p.months.length ? `, cycles from ${p.months.at(-1)}` : ""}`, String(p.billablePatients.at(-1) ?? 0), "kpi-patients"),
      kpi(fromApi ? "past due now" : "unpaid on open invoices", unpaid, "kpi-unpaid"),
    ),
    h(
      "div",
      { class: "grid" },
      h(
        "section",
        { class: "card" },
        h("h2", {}, "MRR trend"),
        mrrBox,
        h("p", { class: "note" }, fromApi ? "Recurring lines of the monthly invoices by the month their cycle starts: closed cycles, and projected with the open cycles as they stand." : "Finalized monthly invoices (open, paid, uncollectible), by the month their cycle starts."),
      ),
      h("section", { class: "card" }, h("h2", {}, "Billable patients"), patientsBox, h("p", { class: "note" }, "Patients billable per cycle, summed over offices by the month the cycle starts (the current cycles: so far).")),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Past-due ageing"),
        ageingBox,
        h("p", { class: "note" }, fromApi ? "Owed on past-due invoices now, by days since they were due." : "The unpaid balance of open invoices by days since they were finalized."),
      ),
    ),
    h(
      "p",
      { class: "note", "data-test": "source" },
      fromApi
        ? `Figures from the platform analytics API (GET /v1/analytics/platform), as of ${p.asOf.slice(0, 16).replace("T", " ")} UTC; definitions in docs/analytics.md.`
        : `Computed in this page from ${offices} offices' invoices${p.truncated ? ` (the first ${MAX_OFFICES} offices only)` : ""}: this Worker has no analytics API.`,
    ),
  );
  const mrrSets = p.mrr.map((s) => ({ label: `MRR${fromApi ? ", closed" : ""} (${s.currency.toUpperCase()})`, data: s.values.map((v) => (v === null ? null : major(v, s.currency))) }));
  if (fromApi) mrrSets.push(...p.mrrProjected.map((s) => ({ label: `MRR, projected (${s.currency.toUpperCase()})`, data: s.values.map((v) => (v === null ? null : major(v, s.currency))), borderDash: [6, 4], fill: false })));
  drawChart(mrrBox, { type: "line", labels: p.months, datasets: mrrSets });
  drawChart(patientsBox, { type: "bar", labels: p.months, datasets: [{ label: "billable patients", data: p.billablePatients }] });
  drawChart(ageingBox, {
    type: "bar",
    stacked: true,
    labels: AGE_BUCKETS.map((b) => b.label),
    datasets: (p.ageing.length > 0 ? p.ageing : [{ currency: "usd", values: AGE_BUCKETS.map(() => 0) }]).map((s) => ({ label: `past due (${s.currency.toUpperCase()})`, data: s.values.map((v) => major(v, s.currency)) })),
  });
}
