// @ts-check
// The platform admin's office list: search by legal-name prefix, sorted by name, paged.
import { api, ok, planNames } from "./api.js";
import { badge, date, h, show } from "./dom.js";

const paymentText = (/** @type {import("./api.js").Schemas["OfficePaymentMethod"]} */ pm) => (pm.status === "on_file" ? `${pm.brand ?? "card"} •••• ${pm.last4 ?? "????"}` : "none");

/** @param {HTMLElement} view @param {URLSearchParams} query */
export async function renderOffices(view, query) {
  const q = query.get("q") ?? "";
  const input = h("input", { type: "search", name: "q", value: q, placeholder: "Legal name starts with…", "aria-label": "Search offices by legal name", "data-test": "search" });
  const form = h("form", { class: "search", role: "search" }, input, h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = input.value.trim();
    location.hash = value ? `#/offices?q=${encodeURIComponent(value)}` : "#/offices";
  });
  const body = h("tbody");
  const more = h("button", { type: "button", class: "secondary hidden", "data-test": "more" }, "More");
  const count = h("p", { class: "note", "data-test": "count" });
  show(
    view,
    h("h1", {}, "Offices"),
    form,
    h(
      "section",
      { class: "card" },
      h("table", { "data-test": "offices" }, h("thead", {}, h("tr", {}, ["Legal name", "Status", "Plan", "Time zone", "Payment method", "Since"].map((t) => h("th", {}, t)))), body),
      count,
      more,
    ),
  );
  const plans = await planNames();
  /** @type {string | undefined} */
  let cursor = undefined;
  let shown = 0;
  const load = async () => {
    more.disabled = true;
    const page = await ok(api.GET("/v1/offices", { params: { query: { sort: "legalName", limit: 50, legalNamePrefix: q || undefined, cursor } } }));
    for (const o of page.data) {
      body.append(
        h(
          "tr",
          { "data-office": o.id },
          h("td", {}, h("a", { href: `#/offices/${o.id}` }, o.legalName)),
          h("td", {}, badge(o.status)),
          h("td", {}, plans.get(o.planVersionId) ?? o.planVersionId),
          h("td", {}, o.timeZone),
          h("td", {}, paymentText(o.paymentMethod)),
          h("td", {}, date(o.createdAt)),
        ),
      );
    }
    shown += page.data.length;
    cursor = page.nextCursor ?? undefined;
    count.textContent = shown === 0 ? (q ? `No office's legal name starts with “${q}”.` : "No offices yet.") : `${shown} office${shown === 1 ? "" : "s"}${cursor ? " so far" : ""}.`;
    more.classList.toggle("hidden", !cursor);
    more.disabled = false;
  };
  more.addEventListener("click", () => load().catch((err) => count.replaceChildren(err instanceof Error ? err.message : String(err))));
  await load();
  input.focus();
}

export { paymentText };
