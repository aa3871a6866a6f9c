// A small client of the billing API for the Node tools (demo seed, operator CLI): JSON in and out,
// problem+json errors raised with their code, detail and request id.

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
  /** @param {string} method @param {string} path @param {unknown} [body] @param {Record<string, string>} [headers] */
  async function call(method, path, body, headers = {}) {
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
  }
  return {
    get: (path) => call("GET", path),
    post: (path, body, headers) => call("POST", path, body ?? {}, headers),
    patch: (path, body, headers) => call("PATCH", path, body ?? {}, headers),
  };
}

/** Waits until the Worker answers /health (any answer: the database may still be starting). */
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
