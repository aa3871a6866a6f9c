// @ts-check
// The API, called with the console's bearer token through the typed client: openapi-fetch (its ESM
// build, served as ./openapi-fetch.js) over the types generated from the API's OpenAPI document
// (client/schema.d.ts, `npm run client:generate`), so `tsc -p tsconfig.clients.json` checks every
// path, parameter and answer field used here. Answers are JSON; a refusal is the API's
// problem+json, raised as an ApiProblem (status, code, detail).
import createClient from "./openapi-fetch.js";

/** @typedef {import("../client/schema").paths} ApiPaths */
/** @typedef {import("../client/schema").components["schemas"]} Schemas */

const TOKEN_KEY = "office-billing.console.token";

export class ApiProblem extends Error {
  /** @param {number} status @param {any} problem the problem+json body, if any */
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code ?? "HTTP_" + status;
    this.requestId = problem?.requestId ?? null;
  }
}

/** The token of this browser tab (sessionStorage: gone when the tab closes), or null. */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string | null} token */
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * The token's claims, read for the console's layout only (role, offices, expiry): the API checks
 * the signature and decides every request; a forged claim here shows a page the API then refuses.
 * @param {string} token
 * @returns {Record<string, unknown> | null}
 */
export function claimsOf(token) {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const claims = JSON.parse(json);
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

/**
 * The API of this origin, typed by its OpenAPI document: `api.GET("/v1/offices/{officeId}", { params: { path: { officeId } } })`.
 * @type {import("./openapi-fetch.js").Client<ApiPaths>}
 */
export const api = createClient({ baseUrl: "", headers: { accept: "application/json" }, cache: "no-store" });
// The tab's token as it is now on every call (it changes when the user pastes another).
api.use({
  onRequest({ request }) {
    const token = getToken();
    if (token) request.headers.set("authorization", `Bearer ${token}`);
    return request;
  },
});

/**
 * The answer of a call, or its refusal thrown as an ApiProblem.
 * @template {{ data?: unknown, error?: unknown, response: Response }} R
 * @param {Promise<R>} call
 * @returns {Promise<NonNullable<R["data"]>>}
 */
export async function ok(call) {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw new ApiProblem(response.status, error && typeof error === "object" ? error : null);
  return /** @type {NonNullable<R["data"]>} */ (data);
}

/**
 * Every page of a cursor-paginated list, up to `max` items: `page(cursor)` asks for one page.
 * @template T
 * @param {(cursor: string | undefined) => Promise<{ data: T[], nextCursor?: string | null }>} page
 * @param {number} [max]
 * @returns {Promise<{ items: T[], truncated: boolean }>}
 */
export async function allPages(page, max = 2000) {
  /** @type {T[]} */
  const out = [];
  /** @type {string | null | undefined} */
  let cursor = undefined;
  do {
    const result = await page(cursor ?? undefined);
    out.push(...result.data);
    cursor = result.nextCursor;
  } while (cursor && out.length < max);
  return { items: out.slice(0, max), truncated: Boolean(cursor) };
}

/** A plan version id → "Plan name v2", from the plans list (platform_admin); empty for other roles. */
export async function planNames() {
  /** @type {Map<string, string>} */
  const names = new Map();
  try {
    const { data } = await ok(api.GET("/v1/plans"));
    for (const p of data) for (const v of p.versions) names.set(v.id, `${p.name} v${v.version}`);
  } catch {
    // Office roles may not list plans: the office page shows the version id instead.
  }
  return names;
}

/** @type {Promise<{ paths?: Record<string, unknown> }> | null} */
let openapi = null;
/**
 * Whether this Worker serves an operation at `path` (its OpenAPI document, /openapi.json, read once).
 * @param {keyof ApiPaths} path
 */
export async function hasRoute(path) {
  openapi ??= fetch("/openapi.json")
    .then((r) => (r.ok ? r.json() : { paths: {} }))
    .catch(() => ({ paths: {} }));
  return Boolean((await openapi).paths?.[path]);
}
