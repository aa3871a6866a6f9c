// The API, called with the console's bearer token. Answers are JSON; a refusal is the API's
// problem+json, raised as an ApiProblem (status, code, detail).

const TOKEN_KEY = "office-billing.console.token";

export class ApiProblem extends Error {
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

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * The token's claims, read for the console's layout only (role, offices, expiry): the API checks
 * the signature and decides every request; a forged claim here shows a page the API then refuses.
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

async function call(method, path, body) {
  const token = getToken();
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiProblem(res.status, data);
  return data;
}

export const api = {
  get: (path) => call("GET", path),
  post: (path, body = {}) => call("POST", path, body),
};

/** Every page of a cursor-paginated list, up to `max` items. */
export async function allPages(path, max = 2000) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api.get(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    out.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor && out.length < max);
  return { items: out.slice(0, max), truncated: Boolean(cursor) };
}

/** A plan version id → "Plan name v2", from the plans list (platform_admin); empty for other roles. */
export async function planNames() {
  const names = new Map();
  try {
    const { data } = await api.get("/v1/plans");
    for (const p of data) for (const v of p.versions) names.set(v.id, `${p.name} v${v.version}`);
  } catch {
    // Office roles may not list plans: the office page shows the version id instead.
  }
  return names;
}

let openapi = null;
/** Whether this Worker serves an operation at `path` (its OpenAPI document, /openapi.json, read once). */
export async function hasRoute(path) {
  openapi ??= fetch("/openapi.json")
    .then((r) => (r.ok ? r.json() : { paths: {} }))
    .catch(() => ({ paths: {} }));
  return Boolean((await openapi).paths?.[path]);
}
