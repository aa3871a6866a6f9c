// @ts-check
// The billing console: a token, then views by role. platform_admin: portfolio, office list,
// any office; office_admin / office_viewer: their own office only (the API enforces the same
// rules; the console only lays out what a role may see). Hash routes: #/portfolio, #/offices,
// #/offices/<id>, #/office (my office), #/token.
import { ApiProblem, claimsOf, getToken, setToken } from "./api.js";
import { errorCard, h, show } from "./dom.js";
import { renderOffice } from "./office.js";
import { renderOffices } from "./offices.js";
import { renderPortfolio } from "./portfolio.js";

const main = /** @type {HTMLElement} */ (document.getElementById("view"));
// Each route renders into its own element: a slower, older render finishes into a detached one.
let view = main;
const OFFICE_ROLES = new Set(["office_admin", "office_viewer"]);

// An identity provider's redirect hands the access token over in the fragment
// (#access_token=…): it never reaches a server; it is kept in this tab only and the fragment cleared.
function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("access_token");
  if (!token) return;
  setToken(token);
  history.replaceState(null, "", `${location.pathname}#/`);
}

/** @typedef {{ role: string, sub: string, officeIds: string[] }} Claims */

/** @returns {null | { invalid: true } | { expired: true } | Claims} */
function currentClaims() {
  const token = getToken();
  if (!token) return null;
  const claims = claimsOf(token);
  if (!claims || typeof claims.role !== "string") return { invalid: true };
  if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) return { expired: true };
  return { role: claims.role, sub: String(claims.sub ?? ""), officeIds: Array.isArray(claims.office_ids) ? claims.office_ids.map(String) : [] };
}

/** @param {string} [message] */
function renderToken(message) {
  const area = h("textarea", { name: "token", "aria-label": "Access token", placeholder: "eyJ…", "data-test": "token", spellcheck: "false", autocomplete: "off" });
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "Access token"),
    message ? h("p", { class: "error card", role: "alert" }, message) : null,
    h("p", {}, "Paste an access token (without “Bearer ”). It stays in this browser tab only (sessionStorage) and is sent to this API alone."),
    area,
    h("div", { class: "actions" }, h("button", { type: "submit", "data-test": "use-token" }, "Use this token"), getToken() ? h("button", { type: "button", class: "secondary", "data-test": "forget-token", onclick: () => { setToken(null); route(); } }, "Forget the token") : null),
    h(
      "p",
      { class: "note" },
      "Locally: ",
      h("code", {}, "npm run dev"),
      " prints a token per role; more with ",
      h("code", {}, "npm run token -- --role office_admin --office <officeId>"),
      ". In production the identity provider issues the token (the same bearer the API takes): its login redirects to ",
      h("code", {}, "/console#access_token=…"),
      ".",
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const token = area.value.trim().replace(/^Bearer\s+/i, "");
    if (!token) return;
    setToken(token);
    if (location.hash === "#/") route();
    else location.hash = "#/";
  });
  show(view, h("h1", {}, "Billing console"), form);
  area.focus();
}

const navLinks = () => /** @type {NodeListOf<HTMLAnchorElement>} */ (document.querySelectorAll("#nav a"));

/** @param {Claims | null} claims */
function updateChrome(claims) {
  const role = claims?.role;
  for (const link of navLinks()) {
    const wanted = link.dataset.role;
    link.classList.toggle("hidden", !role || (wanted === "platform_admin" ? role !== "platform_admin" : !OFFICE_ROLES.has(role)));
  }
  /** @type {HTMLElement} */ (document.getElementById("who")).textContent = role ? `${role}${claims?.sub ? ` · ${claims.sub}` : ""}` : "";
}

/** @param {string | null} name */
function markNav(name) {
  for (const link of navLinks()) link.classList.toggle("active", link.dataset.nav === name);
}

const refused = (/** @type {string} */ detail) => h("section", { class: "card error", role: "alert", "data-test": "refused" }, h("h2", {}, "Not for this token"), h("p", {}, detail));

async function route() {
  takeTokenFromFragment();
  const target = document.createElement("div");
  view = target;
  main.replaceChildren(target);
  const [path, search = ""] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean);
  const query = new URLSearchParams(search);
  const claims = currentClaims();
  updateChrome(claims && "role" in claims ? claims : null);
  if (parts[0] === "token" || !claims) return renderToken();
  if ("invalid" in claims) return renderToken("That is not an access token (a JWT with a role).");
  if ("expired" in claims) return renderToken("The token has expired: paste a new one.");

  const platform = claims.role === "platform_admin";
  if (!platform && !OFFICE_ROLES.has(claims.role)) {
    markNav(null);
    return show(target, refused(`The console is for platform and office admins; a ${claims.role} token has no view here.`));
  }
  try {
    if (parts.length === 0) {
      location.replace(platform ? "#/portfolio" : "#/office");
      return;
    }
    if (parts[0] === "portfolio" || (parts[0] === "offices" && parts.length === 1)) {
      markNav(parts[0]);
      if (!platform) return show(target, refused(`The ${parts[0] === "portfolio" ? "portfolio" : "office list"} is for platform admins. Your ${claims.role} token sees its own office only.`));
      return parts[0] === "portfolio" ? await renderPortfolio(target) : await renderOffices(target, query);
    }
    if (parts[0] === "office") {
      markNav("office");
      if (claims.officeIds.length === 1) return location.replace(`#/offices/${claims.officeIds[0]}`);
      if (claims.officeIds.length === 0) return show(target, refused("Your token names no office."));
      return show(target, h("h1", {}, "Your offices"), h("ul", {}, claims.officeIds.map((id) => h("li", {}, h("a", { href: `#/offices/${id}` }, id)))));
    }
    if (parts[0] === "offices" && parts.length === 2) {
      const officeId = parts[1];
      markNav(platform ? "offices" : "office");
      if (!platform && !claims.officeIds.includes(officeId)) return show(target, refused("This office is not yours: your token sees only its own office."));
      return await renderOffice(target, officeId, claims);
    }
    markNav(null);
    show(target, errorCard("No such page", "Use the links above."));
  } catch (err) {
    if (err instanceof ApiProblem && err.status === 401) return renderToken(`The API refused the token: ${err.message}`);
    if (err instanceof ApiProblem && (err.status === 403 || err.status === 404)) return show(target, refused(`The API refused: ${err.message}`));
    const requestId = err instanceof ApiProblem ? err.requestId : null;
    show(target, errorCard("Something went wrong", `${err instanceof Error ? err.message : String(err)}${requestId ? ` (request ${requestId})` : ""}`));
  }
}

window.addEventListener("hashchange", route);
route();
