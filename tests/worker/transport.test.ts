import { createExecutionContext, env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
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
