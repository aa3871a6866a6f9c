// @ts-check
// One office: status, plan, payment method, billable patients per cycle, invoices with their
// hosted links, and the billing-portal button (platform_admin, office_admin).
import { allPages, api, ok, planNames } from "./api.js";
import { drawChart } from "./charts.js";
import { badge, date, h, money, outLink, show } from "./dom.js";
import { paymentText } from "./offices.js";
import { patientsPerCycle } from "./portfolio-data.js";

const PORTAL_ROLES = new Set(["platform_admin", "office_admin"]);

/** @param {import("./api.js").Schemas["OfficePaymentMethod"]} pm */
function paymentMethod(pm) {
  if (pm.status !== "on_file") return "none on file: invoices are sent by e-mail with a due date";
  const exp = pm.expMonth && pm.expYear ? `, expires ${String(pm.expMonth).padStart(2, "0")}/${pm.expYear}` : "";
  return `${paymentText(pm)}${exp} (charged automatically)`;
}

/** @param {string} officeId */
function portalButton(officeId) {
  const status = h("span", { class: "note", "data-test": "portal-status" });
  const button = h("button", { type: "button", "data-test": "portal" }, "Manage payment methods (billing portal)");
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Opening Stripe's billing portal…";
    try {
      const { url } = await ok(api.POST("/v1/offices/{officeId}/billing-portal", { params: { path: { officeId } } }));
      const link = outLink(url, "Open the billing portal");
      if (!link) throw new Error("The portal's address is not a web page.");
      status.replaceChildren(link);
      location.assign(link.href);
    } catch (err) {
      status.textContent = `The portal could not be opened: ${err instanceof Error ? err.message : String(err)}`;
      button.disabled = false;
    }
  });
  return h("div", { class: "actions" }, button, status);
}

/**
 * @param {HTMLElement} view
 * @param {string} officeId
 * @param {{ role: string }} claims
 */
export async function renderOffice(view, officeId, claims) {
  show(view, h("h1", {}, "Office"), h("p", { class: "note" }, "Loading…"));
  const [office, { items: invoices }, plans] = await Promise.all([
    ok(api.GET("/v1/offices/{officeId}", { params: { path: { officeId } } })),
    allPages((cursor) => ok(api.GET("/v1/offices/{officeId}/invoices", { params: { path: { officeId }, query: { limit: 100, cursor } } })), 300),
    claims.role === "platform_admin" ? planNames() : Promise.resolve(new Map()),
  ]);
  const cycles = patientsPerCycle(invoices);
  const chartBox = h("div", { class: "chart", "data-test": "chart-office-patients", "aria-label": "Billable patients per cycle" });
  const plan = plans.get(office.planVersionId) ?? office.planVersionId;
  const pending = office.pendingPlanVersionId ? ` (from the next cycle: ${plans.get(office.pendingPlanVersionId) ?? office.pendingPlanVersionId})` : "";

  const rows = invoices.map((inv) => {
    const docs = inv.documents;
    return h(
      "tr",
      { "data-invoice": inv.id },
      h("td", {}, docs?.number ?? "—"),
      h("td", {}, inv.kind.replace("_", "-")),
      h("td", {}, `${inv.periodStart} → ${inv.periodEnd}`),
      h("td", {}, badge(inv.status)),
      h("td", { class: "num" }, inv.patients ? String(inv.patients.billable) : "—"),
      h("td", { class: "num" }, money(inv.total, inv.currency)),
      h("td", { class: "num" }, money(inv.amountPaid - inv.amountRefunded, inv.currency)),
      h(
        "td",
        { class: "links" },
        docs ? outLink(docs.hostedInvoiceUrl, "Hosted invoice", { "data-test": "hosted" }) : h("span", { class: "note" }, inv.status === "draft" ? "current cycle" : "not at Stripe"),
        docs?.invoicePdf ? " · " : null,
        docs?.invoicePdf ? outLink(docs.invoicePdf, "PDF", { "data-test": "pdf" }) : null,
      ),
    );
  });

  show(
    view,
    h("h1", { "data-test": "office-name" }, office.legalName, " ", badge(office.status)),
    h(
      "div",
      { class: "grid" },
      h(
        "section",
        { class: "card", "data-test": "office-facts" },
        h("h2", {}, "Billing"),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Status"), h("dd", { "data-test": "status" }, office.status + (office.cancelAtPeriodEnd ? " (cancels at the end of the cycle)" : "")),
          h("dt", {}, "Plan"), h("dd", { "data-test": "plan" }, plan + pending),
          h("dt", {}, "Payment method"), h("dd", { "data-test": "payment-method" }, paymentMethod(office.paymentMethod)),
          h("dt", {}, "Collection"), h("dd", {}, office.collection.method === "send_invoice" ? `invoices by e-mail, due in ${office.collection.daysUntilDue} days` : "automatic"),
          h("dt", {}, "Current cycle"), h("dd", {}, office.currentCycle ? `${office.currentCycle.start} → ${office.currentCycle.end}` : "none"),
          h("dt", {}, "Time zone"), h("dd", {}, `${office.timeZone}, cycles from day ${office.billingAnchorDay}`),
          h("dt", {}, "Billing e-mail"), h("dd", {}, office.billingEmail),
          h("dt", {}, "Customer since"), h("dd", {}, date(office.createdAt)),
        ),
        PORTAL_ROLES.has(claims.role) ? portalButton(office.id) : h("p", { class: "note" }, "Payment methods are managed by the office's admin."),
      ),
      h("section", { class: "card" }, h("h2", {}, "Billable patients per cycle"), chartBox, h("p", { class: "note" }, "From the office's monthly invoices; the current cycle shows its running count.")),
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Invoices"),
      invoices.length === 0
        ? h("p", { class: "note" }, "No invoices yet.")
        : h(
            "table",
            { "data-test": "invoices" },
            h("thead", {}, h("tr", {}, h("th", {}, "Number"), h("th", {}, "Kind"), h("th", {}, "Period"), h("th", {}, "Status"), h("th", { class: "num" }, "Patients"), h("th", { class: "num" }, "Total"), h("th", { class: "num" }, "Paid (net)"), h("th", {}, "Documents"))),
            h("tbody", {}, rows),
          ),
      h("p", { class: "note" }, "Hosted invoice and PDF links are Stripe's bearer links: anyone with one can see the invoice."),
    ),
  );
  drawChart(chartBox, {
    type: "bar",
    labels: cycles.map((c) => (c.running ? `${c.cycle} (so far)` : c.cycle)),
    datasets: [{ label: "billable patients", data: cycles.map((c) => c.billable) }],
  });
}
