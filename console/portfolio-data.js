// The portfolio's figures, computed from what the API lists: offices (GET /v1/offices) and each
// office's invoices (GET /v1/offices/{id}/invoices). Pure functions (no DOM, no fetch): the
// console draws them, tests/unit/console-portfolio.test.ts checks them.

const FINALIZED = new Set(["open", "paid", "uncollectible"]);
export const AGE_BUCKETS = [
  { label: "0–30 days", max: 30 },
  { label: "31–60 days", max: 60 },
  { label: "61–90 days", max: 90 },
  { label: "over 90 days", max: Infinity },
];
const DAY_MS = 86_400_000;

/**
 * @param {{ id: string, status: string }[]} offices
 * @param {Map<string, any[]>} invoicesByOffice  office id → its invoices (the API's Invoice objects)
 * @param {number} now  epoch ms (the clock is an input)
 */
export function portfolio(offices, invoicesByOffice, now) {
  const months = new Set();
  const mrr = new Map(); // currency → month → minor units
  const patients = new Map(); // month → billable patients
  const ageing = new Map(); // currency → bucket amounts
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
        amounts[bucket] += balance;
        ageing.set(inv.currency, amounts);
      }
    }
  }
  const axis = [...months].sort();
  const currencies = [...new Set([...mrr.keys(), ...ageing.keys()])].sort();
  return {
    months: axis,
    // A month with no finalized invoice in a currency (the current cycles: drafts) has no MRR point.
    mrr: [...mrr.keys()].sort().map((currency) => ({ currency, values: axis.map((m) => mrr.get(currency).get(m) ?? null) })),
    billablePatients: axis.map((m) => patients.get(m) ?? 0),
    ageing: [...ageing.keys()].sort().map((currency) => ({ currency, values: ageing.get(currency) })),
    currencies,
    offices: { total: offices.length, byStatus },
    openInvoices,
  };
}

/** An office's billable patients per cycle, oldest first, from its monthly invoices (a draft: the running count). */
export function patientsPerCycle(invoices) {
  return invoices
    .filter((i) => i.kind === "monthly" && i.status !== "void" && i.patients)
    .sort((a, b) => a.periodStart.localeCompare(b.periodStart))
    .map((i) => ({ cycle: i.periodStart, billable: i.patients.billable, running: i.status === "draft" }));
}
