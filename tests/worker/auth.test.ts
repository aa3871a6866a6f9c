import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { toBase64Url, utf8 } from "../../src/security/encoding";
import { bearer, mintJwksToken, mintToken, standardClaims } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { refusalEntry } from "../harness/refusals";

const url = "https://billing.test/v1/audit";
const now = () => Math.floor(Date.now() / 1000);

async function refused(headers: Record<string, string>, reason: RegExp) {
  const res = await SELF.fetch(url, { headers });
  const body = await expectProblem(res, 401, "UNAUTHORIZED");
  const requestId = res.headers.get("x-request-id")!;
  expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="office-billing"/);
  // The refusal is on record in the platform chain (aggregated per address, reason and minute), with the reason and never the token.
  const entry = await refusalEntry(requestId);
  expect(entry).toMatchObject({ chain: "platform", action: "auth.authenticate", outcome: "denied", actorSub: "anonymous", details: { aggregated: true, source: "unknown" } });
  expect(entry.details.count).toBeGreaterThanOrEqual(1);
  expect(String(entry.details.reason)).toMatch(reason);
  if (headers.authorization) expect(JSON.stringify(entry)).not.toContain(headers.authorization.slice(7, 40));
  return body;
}

describe("authentication on /v1", () => {
  it("accepts a valid token", async () => {
    const res = await SELF.fetch(url, { headers: bearer(await mintToken("platform_admin")) });
    expect(res.status).toBe(200);
  });

  it("refuses a missing token", async () => {
    const res = await SELF.fetch(url);
    await expectProblem(res, 401, "UNAUTHORIZED");
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="office-billing"');
    await refused({}, /missing/);
  });

  it("refuses a malformed authorization header and a malformed token", async () => {
    await refused({ authorization: "Basic dXNlcjpwYXNz" }, /malformed/);
    await refused({ authorization: "Bearer not-a-jwt" }, /malformed/);
    await refused({ authorization: "Bearer a.b.c" }, /malformed/);
  });

  it("refuses an expired token (beyond the 60 s skew) and accepts one within it", async () => {
    await refused(bearer(await mintToken("platform_admin", [], { claims: { exp: now() - 61, iat: now() - 3600, nbf: now() - 3600 } })), /expired/);
    const withinSkew = await mintToken("platform_admin", [], { claims: { exp: now() - 30 } });
    expect((await SELF.fetch(url, { headers: bearer(withinSkew) })).status).toBe(200);
  });

  it("refuses a token that is not yet valid", async () => {
    await refused(bearer(await mintToken("platform_admin", [], { claims: { nbf: now() + 120 } })), /not yet valid/);
  });

  it("refuses a token signed with another secret", async () => {
    await refused(bearer(await mintToken("platform_admin", [], { secret: "x".repeat(40) })), /bad signature/);
  });

  it("refuses a token whose payload was altered after signing", async () => {
    const token = await mintToken("office_viewer", []);
    const [h, , s] = token.split(".");
    const forged = toBase64Url(utf8(JSON.stringify({ sub: "x", role: "platform_admin", office_ids: [], iss: env.AUTH_ISSUER, aud: env.AUTH_AUDIENCE, exp: now() + 600 })));
    await refused(bearer(`${h}.${forged}.${s}`), /bad signature/);
  });

  it("refuses the wrong issuer and the wrong audience", async () => {
    await refused(bearer(await mintToken("platform_admin", [], { claims: { iss: "https://evil.example" } })), /wrong issuer/);
    await refused(bearer(await mintToken("platform_admin", [], { claims: { aud: "another-api" } })), /wrong audience/);
  });

  it("refuses alg none, and an RS256 token with a forged signature", async () => {
    const payload = toBase64Url(utf8(JSON.stringify({ sub: "x", role: "platform_admin", office_ids: [], iss: env.AUTH_ISSUER, aud: env.AUTH_AUDIENCE, exp: now() + 600 })));
    const none = `${toBase64Url(utf8('{"alg":"none","typ":"JWT"}'))}.${payload}.`;
    await refused(bearer(none), /malformed|algorithm/);
    const noneWithSig = `${toBase64Url(utf8('{"alg":"none","typ":"JWT"}'))}.${payload}.${toBase64Url(utf8("sig"))}`;
    await refused(bearer(noneWithSig), /algorithm not accepted/);
    const rs = `${toBase64Url(utf8('{"alg":"RS256","typ":"JWT"}'))}.${payload}.${toBase64Url(utf8("sig"))}`;
    await refused(bearer(rs), /bad signature/);
  });

  it("refuses claims that are missing or of an unknown role", async () => {
    await refused(bearer(await mintToken("platform_admin", [], { claims: { role: "superuser" } })), /claims/);
    await refused(bearer(await mintToken("platform_admin", [], { claims: { sub: "" } })), /claims/);
  });

  it("answers unknown /v1 routes 401 without a token and 404 with one (nothing to enumerate)", async () => {
    expect((await SELF.fetch("https://billing.test/v1/nope")).status).toBe(401);
    const res = await SELF.fetch("https://billing.test/v1/nope", { headers: bearer(await mintToken("office_viewer")) });
    await expectProblem(res, 404, "NOT_FOUND");
  });
});

describe("production-style keys from a JWKS URL", () => {
  it("accepts RS256 and ES256 tokens signed by the identity provider's keys", async () => {
    for (const alg of ["RS256", "ES256"] as const) {
      const token = await mintJwksToken(alg, standardClaims("platform_admin"));
      const res = await SELF.fetch(url, { headers: bearer(token) });
      expect(res.status, alg).toBe(200);
    }
  });

  it("refuses a JWKS token with an unknown key id, or checked against the wrong algorithm", async () => {
    await refused(bearer(await mintJwksToken("RS256", standardClaims("platform_admin"), "unknown-kid")), /unknown signing key/);
    // An ES256 signature presented as the RSA key's token.
    const es = await mintJwksToken("ES256", standardClaims("platform_admin"), "test-rsa-1");
    await refused(bearer(es), /unknown signing key|bad signature/);
  });

  it("still checks issuer, audience and expiry of JWKS tokens", async () => {
    await refused(bearer(await mintJwksToken("ES256", standardClaims("platform_admin", [], { iss: "other" }))), /wrong issuer/);
    await refused(bearer(await mintJwksToken("RS256", standardClaims("platform_admin", [], { exp: now() - 120 }))), /expired/);
  });
});

describe("verifier hardening", () => {
  it("refuses HS256 tokens in production: the verifier gets no dev secret there", async () => {
    const { verifyOptions } = await import("../../src/security/auth");
    const { loadConfig } = await import("../../src/config");
    const { verifyJwt } = await import("../../src/security/jwt");
    const prod = loadConfig({
      ...env,
      ENVIRONMENT: "production",
      TURSO_DATABASE_URL: "libsql://billing.example.turso.io",
      TURSO_AUTH_TOKEN: "t",
      AUTH_JWKS_URL: "https://idp.example/jwks",
      AUTH_DEV_SECRET: undefined,
      STRIPE_API_BASE: undefined,
      CLINICAL_WEBHOOK_URL: undefined,
    });
    const opts = verifyOptions(prod);
    expect(opts.devSecret).toBeUndefined();
    const hs256 = await mintToken("platform_admin");
    await expect(verifyJwt(hs256, opts)).rejects.toThrow(/algorithm not accepted/);
    expect(verifyOptions(loadConfig(env)).devSecret).toBe(env.AUTH_DEV_SECRET);
  });

  it("refuses a critical header it does not understand, and an overlong lifetime", async () => {
    await refused(bearer(await mintToken("platform_admin", [], { header: { crit: ["exp"] } })), /critical header/);
    await refused(bearer(await mintToken("platform_admin", [], { ttlS: 3 * 24 * 3600 })), /lifetime too long/);
  });

  it("refuses a subject that is not printable ASCII (it is recorded byte for byte)", async () => {
    await refused(bearer(await mintToken("platform_admin", [], { sub: "abc\ud800def" })), /claims/);
  });

  it("answers 503, not 401 or 500, when the identity provider's keys cannot be fetched", async () => {
    const { createExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../../src/index")).default;
    const token = await mintJwksToken("RS256", standardClaims("platform_admin"));
    const res = await worker.fetch(
      new Request(url, { headers: bearer(token) }),
      { ...env, AUTH_JWKS_URL: "http://127.0.0.1:9/jwks.json" },
      createExecutionContext(),
    );
    await expectProblem(res, 503, "SERVICE_UNAVAILABLE");
  });
});

describe("JWKS keys while the identity provider is unreachable", () => {
  /** A resolver on its own cache entry, whose IdP can be taken down, on a clock the test moves. */
  async function resolverWithOutage(maxStaleSeconds?: number) {
    const { jwksResolver } = await import("../../src/security/jwt");
    const state = { down: false, at: Date.now(), fetches: 0 };
    const fetcher = (async () => {
      state.fetches++;
      if (state.down) throw new TypeError("connect ECONNREFUSED");
      return fetch(String(env.AUTH_JWKS_URL)); // the stand-in identity provider, for real
    }) as unknown as typeof fetch;
    const resolve = jwksResolver(`https://idp-${crypto.randomUUID()}.test/jwks.json`, { fetcher, maxStaleSeconds, clock: () => state.at });
    return { state, resolve };
  }

  it("keeps accepting the last fetched keys for the documented bound (24 h by default), then refuses to verify (503)", async () => {
    const { verifyJwt, KeysUnavailableError, JWKS_MAX_STALE_DEFAULT_S, JWKS_TTL_MS } = await import("../../src/security/jwt");
    expect(JWKS_MAX_STALE_DEFAULT_S).toBe(24 * 3600);
    const { state, resolve } = await resolverWithOutage();
    const opts = { issuer: String(env.AUTH_ISSUER), audience: String(env.AUTH_AUDIENCE), jwks: resolve };
    const token = await mintJwksToken("RS256", standardClaims("platform_admin"));
    const fetchedAt = state.at;
    await expect(verifyJwt(token, opts)).resolves.toMatchObject({ role: "platform_admin" });

    state.down = true;
    state.at = fetchedAt + JWKS_TTL_MS + 1; // the cache is due for a refetch, which fails
    await expect(verifyJwt(token, opts)).resolves.toMatchObject({ role: "platform_admin" });
    state.at = fetchedAt + JWKS_MAX_STALE_DEFAULT_S * 1000; // exactly at the bound: still accepted
    await expect(verifyJwt(token, opts)).resolves.toMatchObject({ role: "platform_admin" });
    state.at = fetchedAt + JWKS_MAX_STALE_DEFAULT_S * 1000 + 1; // past it: no verification at all
    await expect(verifyJwt(token, opts)).rejects.toBeInstanceOf(KeysUnavailableError);

    // The provider is back: the next request fetches fresh keys and the bound restarts from there.
    state.down = false;
    await expect(verifyJwt(token, opts)).resolves.toMatchObject({ role: "platform_admin" });
    state.down = true;
    state.at += JWKS_TTL_MS + 1;
    await expect(verifyJwt(token, opts)).resolves.toMatchObject({ role: "platform_admin" });
  });

  it("honours JWKS_MAX_STALE_SECONDS, validated in the configuration", async () => {
    const { verifyJwt, KeysUnavailableError, JWKS_TTL_MS } = await import("../../src/security/jwt");
    const { loadConfig, ConfigError } = await import("../../src/config");
    expect(loadConfig({ ...env, JWKS_MAX_STALE_SECONDS: "3600" }).JWKS_MAX_STALE_SECONDS).toBe(3600);
    expect(() => loadConfig({ ...env, JWKS_MAX_STALE_SECONDS: "-1" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...env, JWKS_MAX_STALE_SECONDS: "a day" })).toThrow(/JWKS_MAX_STALE_SECONDS/);

    const { state, resolve } = await resolverWithOutage(3600);
    const opts = { issuer: String(env.AUTH_ISSUER), audience: String(env.AUTH_AUDIENCE), jwks: resolve };
    const token = await mintJwksToken("ES256", standardClaims("platform_admin"));
    const fetchedAt = state.at;
    await verifyJwt(token, opts);
    state.down = true;
    state.at = fetchedAt + JWKS_TTL_MS + 1;
    await expect(verifyJwt(token, opts)).resolves.toMatchObject({ role: "platform_admin" });
    state.at = fetchedAt + 3600_000 + 1;
    await expect(verifyJwt(token, opts)).rejects.toBeInstanceOf(KeysUnavailableError);
  });

  it("answers 503 problem+json once the bound has passed (the middleware's mapping)", async () => {
    const { createExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../../src/index")).default;
    const { setClock } = await import("../../src/clock");
    const { JWKS_TTL_MS } = await import("../../src/security/jwt");
    // An identity provider that answered once (its keys are cached under this URL), then went away.
    const jwksUrl = `http://127.0.0.1:9/jwks-${crypto.randomUUID()}.json`;
    const { jwksResolver } = await import("../../src/security/jwt");
    const t0 = Date.now();
    setClock(t0);
    try {
      await jwksResolver(jwksUrl, { fetcher: (() => fetch(String(env.AUTH_JWKS_URL))) as unknown as typeof fetch })("test-rsa-1", "RS256");
      const token = await mintJwksToken("RS256", standardClaims("platform_admin"));
      const call = () => worker.fetch(new Request(url, { headers: bearer(token) }), { ...env, AUTH_JWKS_URL: jwksUrl, JWKS_MAX_STALE_SECONDS: "600" }, createExecutionContext());
      setClock(t0 + JWKS_TTL_MS - 1); // still fresh, no refetch
      expect((await call()).status).toBe(200);
      setClock(t0 + 600_000 + 1); // due for a refetch, which fails, and past the 600 s bound
      await expectProblem(await call(), 503, "SERVICE_UNAVAILABLE");
    } finally {
      setClock();
    }
  });
});
