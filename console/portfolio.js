// The platform admin's portfolio: MRR trend, billable patients per month, past-due ageing.
import { allPages, api } from "./api.js";
import { drawChart } from "./charts.js";
import { h, major, money, show } from "./dom.js";
import { AGE_BUCKETS, portfolio } from "./portfolio-data.js";

/** Offices the portfolio reads at most (the list and then each office's invoices). */
const MAX_OFFICES = 500;
const MAX_INVOICES = 100;

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

export async function renderPortfolio(view) {
  show(view, h("h1", {}, "Portfolio"), h("p", { class: "note" }, "Loading the offices and their invoices…"));
  const { items: offices, truncated } = await allPages("/v1/offices?limit=200", MAX_OFFICES);
  const lists = await mapLimited(offices, 6, (o) => api.get(`/v1/offices/${o.id}/invoices?limit=${MAX_INVOICES}`).then((p) => p.data));
  const invoices = new Map(offices.map((o, i) => [o.id, lists[i]]));
  const p = portfolio(offices, invoices, Date.now());

  const lastMonth = p.months.length > 0 ? p.months.at(-1) : null;
  const mrrNow = p.mrr.map((s) => {
    const idx = s.values.findLastIndex((v) => v !== null);
    return idx < 0 ? null : `${money(s.values[idx], s.currency)} (${p.months[idx]})`;
  }).filter(Boolean);
  const pastDue = p.ageing.map((s) => money(s.values.reduce((a, b) => a + b, 0), s.currency));
  const kpi = (label, value, test) => h("div", { class: "card kpi", "data-test": test }, h("div", { class: "value" }, value), h("div", { class: "label" }, label));

  const mrrBox = h("div", { class: "chart", "data-test": "chart-mrr", "aria-label": "MRR by month" });
  const patientsBox = h("div", { class: "chart", "data-test": "chart-patients", "aria-label": "Billable patients by month" });
  const ageingBox = h("div", { class: "chart", "data-test": "chart-ageing", "aria-label": "Past-due ageing" });
  show(
    view,
    h("h1", {}, "Portfolio"),
    h(
      "div",
      { class: "kpis" },
      kpi("offices", String(p.offices.total), "kpi-offices"),
      kpi("past due", String(p.offices.byStatus.past_due ?? 0), "kpi-past-due-offices"),
      kpi("MRR, last finalized month", mrrNow.join(" · ") || "—", "kpi-mrr"),
      kpi("billable patients" + (lastMonth ? `, cycles from ${lastMonth}` : ""), String(p.billablePatients.at(-1) ?? 0), "kpi-patients"),
      kpi("unpaid on open invoices", pastDue.join(" · ") || money(0, "usd"), "kpi-unpaid"),
    ),
    h(
      "div",
      { class: "grid" },
      h("section", { class: "card" }, h("h2", {}, "MRR trend"), mrrBox, h("p", { class: "note" }, "Finalized monthly invoices (open, paid, uncollectible), by the month their cycle starts.")),
      h("section", { class: "card" }, h("h2", {}, "Billable patients"), patientsBox, h("p", { class: "note" }, "Patients billable per cycle, summed over offices by the month the cycle starts (the current cycle: its running count).")),
      h("section", { class: "card" }, h("h2", {}, "Past-due ageing"), ageingBox, h("p", { class: "note" }, "The unpaid balance of open invoices by days since they were finalized.")),
    ),
    h("p", { class: "note" }, `Computed in this page from ${p.offices.total} offices' invoices${truncated ? ` (the first ${MAX_OFFICES} offices only)` : ""}.`),
  );
  drawChart(mrrBox, { type: "line", labels: p.months, datasets: p.mrr.map((s) => ({ label: `MRR (${s.currency.toUpperCase()})`, data: s.values.map((v) => (v === null ? null : major(v, s.currency))) })) });
  drawChart(patientsBox, { type: "bar", labels: p.months, datasets: [{ label: "billable patients", data: p.billablePatients }] });
  drawChart(ageingBox, {
    type: "bar",
    stacked: true,
    labels: AGE_BUCKETS.map((b) => b.label),
    datasets: (p.ageing.length > 0 ? p.ageing : [{ currency: "usd", values: AGE_BUCKETS.map(() => 0) }]).map((s) => ({ label: `unpaid (${s.currency.toUpperCase()})`, data: s.values.map((v) => major(v, s.currency)) })),
  });
}
