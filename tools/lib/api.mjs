// @ts-check
// Clients of the billing API for the Node tools. `typedClient` is openapi-fetch over the types
// generated from the OpenAPI document (client/schema.d.ts, `npm run client:generate`): paths, path
// parameters, queries, bodies and answers are checked by `tsc -p tsconfig.clients.json`; the operator
// CLI calls the API through it only. `apiClient` (JSON in and out by path) remains for the dev
// stack's seed, the drills and the benchmarks. Both raise problem+json errors as an ApiProblem
// with its code, detail and request id.
import createClient from "openapi-fetch";

/** @typedef {import("../../client/schema").paths} ApiPaths */
/** @typedef {import("openapi-fetch").Client<ApiPaths>} TypedClient */

export class ApiProblem extends Error {
  /** @param {number} status @param {Record<string, any>} problem */
  constructor(status, problem) {
    super(`${status} ${problem.code ?? ""}: ${problem.detail ?? problem.title ?? "request failed"}${problem.requestId ? ` (request ${problem.requestId})` : ""}`);
    this.name = "ApiProblem";
    this.status = status;
    this.problem = problem;
  }
}

/**
 * @param {string} base e.g. http://127.0.0.1:8787
 * @param {string} token a bearer token
 */
export function apiClient(base, token) {
  /** @type {(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<any>} */
  const call = async function call(method, path, body, headers = {}) {
    const res = await fetch(new URL(path, base), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { detail: text.slice(0, 200) };
    }
    if (!res.ok) throw new ApiProblem(res.status, json ?? {});
    return json;
  };
  return {
    /** @param {string} path */
    get: (path) => call("GET", path),
    /** @param {string} path @param {unknown} [body] @param {Record<string, string>} [headers] */
    post: (path, body, headers) => call("POST", path, body ?? {}, headers),
    /** @param {string} path @param {unknown} [body] @param {Record<string, string>} [headers] */
    patch: (path, body, headers) => call("PATCH", path, body ?? {}, headers),
  };
}

/**
 * The typed client of the API at `base` (openapi-fetch), sending `token` as the bearer.
 * @param {string} base e.g. http://127.0.0.1:8787
 * @param {string} token a bearer token
 * @param {{ fetch?: (request: Request) => Promise<Response> }} [options]
 * @returns {TypedClient}
 */
export function typedClient(base, token, options = {}) {
  return createClient({ baseUrl: base.replace(/\/+$/, ""), headers: { authorization: `Bearer ${token}`, accept: "application/json" }, ...options });
}

/**
 * The answer of a typed call, or its refusal thrown as an ApiProblem (problem+json: code, detail,
 * request id; any other body as its first 200 characters).
 * @template {{ data?: unknown, error?: unknown, response: Response }} R
 * @param {Promise<R>} call e.g. `api.GET("/v1/offices/{id}", { params: { path: { id } } })`
 * @returns {Promise<NonNullable<R["data"]>>}
 */
export async function must(call) {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) {
    throw new ApiProblem(response.status, error && typeof error === "object" ? /** @type {Record<string, any>} */ (error) : { detail: String(error ?? "").slice(0, 200) });
  }
  return /** @type {NonNullable<R["data"]>} */ (data);
}

/** Waits until the Worker answers /health (any answer: the database may still be starting). @param {string} base @param {number} [timeoutMs] */
export async function waitForApi(base, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(new URL("/health", base));
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`the API at ${base} did not answer within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
