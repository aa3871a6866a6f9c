// @ts-check
// DOM helpers: every value reaches the page as text (never as HTML), links only when http(s).

/** @typedef {Node | string | number | null | undefined | false} Child */
/** @typedef {Child | Child[]} Children */

/**
 * An element: `h("td", { class: "num" }, "12", child)`. Attributes are set one by one; `on*` keys add listeners.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown> | null} [attrs]
 * @param {...Children} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * A link to an outside page (Stripe's hosted invoice, its PDF), or nothing when the URL is not http(s).
 * @param {string} url @param {string} text @param {Record<string, unknown>} [attrs]
 */
export function outLink(url, text, attrs = {}) {
  try {
    const u = new URL(url);
    if (u.protocol !== "https:" && u.protocol !== "http:") return null;
    return h("a", { href: u.href, target: "_blank", rel: "noopener noreferrer", ...attrs }, text);
  } catch {
    return null;
  }
}

const formats = new Map();
/**
 * Minor units in a currency, shown in its own decimals: 12345 usd → $123.45.
 * @param {number} minor @param {string | null | undefined} currency
 */
export function money(minor, currency) {
  const code = (currency ?? "usd").toUpperCase();
  let f = formats.get(code);
  if (!f) {
    f = new Intl.NumberFormat("en-US", { style: "currency", currency: code });
    formats.set(code, f);
  }
  const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
  return f.format(minor / 10 ** digits);
}

/**
 * Minor units to major units of a currency (for chart axes).
 * @param {number} minor @param {string | null | undefined} currency
 */
export function major(minor, currency) {
  const digits = new Intl.NumberFormat("en-US", { style: "currency", currency: (currency ?? "usd").toUpperCase() }).resolvedOptions().maximumFractionDigits ?? 2;
  return minor / 10 ** digits;
}

export const badge = (/** @type {string} */ status) => h("span", { class: `badge ${status}` }, status.replace("_", " "));
export const date = (/** @type {string | null | undefined} */ iso) => (iso ? iso.slice(0, 10) : "—");

/**
 * Replaces the view's content.
 * @param {Element} view @param {...(Node | null | undefined | false | (Node | null | undefined | false)[])} children
 */
export function show(view, ...children) {
  view.replaceChildren(.../** @type {Node[]} */ (children.flat().filter(Boolean)));
}

export const errorCard = (/** @type {string} */ title, /** @type {string} */ detail) => h("section", { class: "card error", role: "alert", "data-test": "error" }, h("h2", {}, title), detail ? h("p", {}, detail) : null);
