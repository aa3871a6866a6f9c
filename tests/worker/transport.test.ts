import { createExecutionContext, env, SELF } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app";
import worker from "../../src/index";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";

/** A production configuration (nothing here reaches a database: the refusal comes first). */
const production = {
  ...env,
  ENVIRONMENT: "production",
  TURSO_DATABASE_URL: "libsql://billing-prod.example.turso.io",
  TURSO_AUTH_TOKEN: "token-not-used-by-these-tests",
  AUTH_JWKS_URL: "https://idp.example/.well-known/jwks.json",
  AUTH_DEV_SECRET: undefined,
  STRIPE_API_BASE: undefined,
  CLINICAL_WEBHOOK_URL: undefined, // the tests' local receiver is plain http, refused in production
};

/** A request as Cloudflare's edge hands it over, with `cf.tlsVersion` (when given). */
function edgeRequest(url: string, tlsVersion?: string) {
  return new Request(url, tlsVersion ? { cf: { tlsVersion } } : {}) as unknown as Request<unknown, IncomingRequestCfProperties>;
}

function prodFetch(url: string, tlsVersion?: string) {
  return worker.fetch(edgeRequest(url, tlsVersion), production, createExecutionContext());
}

describe("transport security", () => {
  it("refuses TLS 1.0 and 1.1 in production with 426", async () => {
    for (const version of ["TLSv1", "TLSv1.1"]) {
      const res = await prodFetch("https://billing.example/v1/audit", version);
      const body = await expectProblem(res, 426, "UPGRADE_REQUIRED");
      expect(body.detail).toMatch(/TLS 1\.2 or 1\.3/);
      expect(res.headers.get("upgrade")).toMatch(/TLS/);
    }
  });

  it("refuses plain http and a request without TLS information in production", async () => {
    await expectProblem(await prodFetch("http://billing.example/v1/audit", "TLSv1.3"), 426, "UPGRADE_REQUIRED");
    await expectProblem(await prodFetch("https://billing.example/v1/audit"), 426, "UPGRADE_REQUIRED");
  });

  it("lets TLS 1.2 and 1.3 through in production (to authentication, here)", async () => {
    for (const version of ["TLSv1.2", "TLSv1.3"]) {
      const res = await prodFetch("https://billing.example/nope", version);
      await expectProblem(res, 404, "NOT_FOUND");
    }
  });

  it("does not require TLS in development and test", async () => {
    expect((await SELF.fetch("http://billing.test/health")).status).toBe(200);
  });

  it("sets HSTS, nosniff, a restrictive CSP and no-store on every response", async () => {
    const token = await mintToken("platform_admin");
    for (const res of [await SELF.fetch("https://billing.test/v1/audit", { headers: bearer(token) }), await SELF.fetch("https://billing.test/nope")]) {
      expect(res.headers.get("strict-transport-security")).toMatch(/max-age=\d{7,}/);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("content-security-policy")).toMatch(/default-src 'none'/);
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
  });
});

describe("configuration of secrets", () => {
  const check = async (overrides: Record<string, unknown>) =>
    worker.fetch(new Request("https://billing.test/health"), { ...env, ...overrides }, createExecutionContext());

  it("rejects malformed Stripe keys and webhook secrets, naming the variable only", async () => {
    for (const [variable, value] of [
      ["STRIPE_SECRET_KEY", "pk_test_abcdefghijklmnop"],
      ["STRIPE_SECRET_KEY", "sk_prod_abcdefghijklmnop"],
      ["STRIPE_WEBHOOK_SECRET", "secret_abcdefghijklmnop"],
      ["STRIPE_WEBHOOK_SECRET_PREVIOUS", "whsec_"],
      ["DATA_ENCRYPTION_KEY", "k1:tooshort"],
      ["PATIENT_KEY_SECRET", "short"],
      ["AUTH_DEV_SECRET", "short"],
    ] as const) {
      const body = await expectProblem(await check({ [variable]: value }), 500, "CONFIG_INVALID");
      expect(body.detail, variable).toContain(variable);
      expect(JSON.stringify(body), variable).not.toContain(value.slice(0, 12));
    }
  });

  it("accepts well-formed Stripe keys (secret and restricted, test and live)", async () => {
    // Built at run time so no string in the repository looks like a live key.
    for (const key of ["sk_test_51AbCdEfGhIjKlMn", ["rk", "live", "51AbCdEfGhIjKlMn"].join("_")]) {
      expect((await check({ STRIPE_SECRET_KEY: key, STRIPE_WEBHOOK_SECRET: "whsec_AbCdEfGhIjKlMnOp" })).status).toBe(200);
    }
  });

  it("refuses HS256 dev tokens in production: AUTH_DEV_SECRET must not even be set there", async () => {
    const res = await worker.fetch(
      edgeRequest("https://billing.example/nope", "TLSv1.3"),
      { ...production, AUTH_DEV_SECRET: env.AUTH_DEV_SECRET },
      createExecutionContext(),
    );
    const body = await expectProblem(res, 500, "CONFIG_INVALID");
    expect(body.detail).toContain("AUTH_DEV_SECRET");
  });

  it("requires https for the JWKS URL and the Stripe API base in production", async () => {
    const res = await worker.fetch(
      edgeRequest("https://billing.example/nope", "TLSv1.3"),
      { ...production, AUTH_JWKS_URL: "http://idp.example/jwks", STRIPE_API_BASE: "http://127.0.0.1:12111" },
      createExecutionContext(),
    );
    const body = await expectProblem(res, 500, "CONFIG_INVALID");
    expect(body.detail).toContain("AUTH_JWKS_URL");
    expect(body.detail).toContain("STRIPE_API_BASE");
  });
});

/**
 * A GET or HEAD request carrying a body, as the runtime hands one over from the network (curl -X GET
 * -d …). workerd's Request constructor refuses to build one (and so does SELF.fetch), so the body is
 * attached to a real bodyless request; the Worker sees exactly what it sees in production.
 */
function withBody(method: "GET" | "HEAD", path: string, body: string, headers: Record<string, string> = {}) {
  const req = new Request(`https://billing.test${path}`, { method, headers: { "content-type": "application/json", ...headers } });
  const stream = new Response(body).body;
  Object.defineProperty(req, "body", { get: () => stream });
  return req;
}

/** A body stream that breaks off after its first bytes, as when the client hangs up mid-body. */
function brokenBody() {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new TextEncoder().encode('{"code":"half-a-pl'));
      } else controller.error(new Error("Network connection lost."));
    },
  });
}

describe("transport-level input", () => {
  afterEach(() => vi.restoreAllMocks());
  const call = (req: Request) => worker.fetch(req as unknown as Request<unknown, IncomingRequestCfProperties>, env, createExecutionContext());

  it("answers a GET with a body with 400 BODY_NOT_ALLOWED, on /health and on a /v1 route before authentication", async () => {
    const errors = vi.spyOn(console, "error");
    const health = await expectProblem(await call(withBody("GET", "/health", "{}", { "content-length": "2" })), 400, "BODY_NOT_ALLOWED");
    expect(health.detail).toMatch(/GET request must not carry a body/);
    // No token at all: the body is refused before authentication would answer 401.
    await expectProblem(await call(withBody("GET", "/v1/plans", '{"a":1}', { "content-length": "7" })), 400, "BODY_NOT_ALLOWED");
    // Without Content-Length (a chunked body), too.
    await expectProblem(await call(withBody("GET", "/v1/audit", "{}")), 400, "BODY_NOT_ALLOWED");
    // And whatever its size or type: no 413 or 415 for a body that must not be there at all.
    await expectProblem(await call(withBody("GET", "/health", "x".repeat(100_000), { "content-type": "text/plain" })), 400, "BODY_NOT_ALLOWED");
    expect(errors).not.toHaveBeenCalled();
  });

  it("answers a HEAD with a body with 400 (problem+json headers, no body)", async () => {
    const res = await call(withBody("HEAD", "/health", "{}", { "content-length": "2" }));
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    expect(await res.text()).toBe("");
  });

  it("lets a GET with an empty body through (an empty chunked body is no body)", async () => {
    const res = await call(withBody("GET", "/health", ""));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", db: "ok" });
  });

  it("documents the 400 on every GET route", async () => {
    const doc = (await (await SELF.fetch("https://billing.test/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const gets = createApp()
      .openAPIRegistry.definitions.filter((d) => d.type === "route")
      .map((d) => (d as unknown as { route: { method: string; path: string } }).route)
      .filter((r) => r.method === "get");
    expect(gets.length).toBeGreaterThan(5);
    for (const r of gets) expect(Object.keys(doc.paths[r.path]!.get!.responses), `GET ${r.path}`).toContain("400");
  });

  it("logs a client that hangs up mid-body once, at warn level with the request id, and answers 400 (no 500, no error log)", async () => {
    const warns = vi.spyOn(console, "warn").mockImplementation(() => {});
    const errors = vi.spyOn(console, "error");
    const req = new Request("https://billing.test/v1/plans", { method: "POST", headers: { "content-type": "application/json" }, body: brokenBody() });
    const res = await call(req);
    const body = await expectProblem(res, 400, "BAD_REQUEST");
    expect(body.detail).toMatch(/ended before it was complete/);
    const lines = warns.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).filter((l) => /client disconnected/.test(String(l.msg)));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "warn", requestId: res.headers.get("x-request-id"), method: "POST" });
    expect(errors).not.toHaveBeenCalled();
  });
});
