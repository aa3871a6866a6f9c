import { createExecutionContext, env, SELF } from "cloudflare:test";
import { and, eq, like } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import worker from "../../src/index";
import { sha256Hex } from "../../src/security/crypto";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { refusalEntry } from "../harness/refusals";
import { testDb } from "../harness/seed";

const url = "https://billing.test/v1/plans";
/** A client address of its own for each test (documentation range), so budgets never mix. */
const address = () => `2001:db8::${crypto.randomUUID().slice(0, 4)}:${crypto.randomUUID().slice(0, 4)}`;
const from = (ip: string, headers: Record<string, string> = {}) => ({ headers: { "cf-connecting-ip": ip, ...headers } });

describe("flood control: Workers Rate Limiting", () => {
  it("limits refused requests per client address: 429 problem+json with Retry-After; other addresses and valid tokens go on", async () => {
    const ip = address();
    const refusedIds: string[] = [];
    let limited: Response | null = null;
    // The budget is 60 a minute per address (wrangler.toml); a window may end during the loop, so up to three budgets.
    for (let i = 0; i < 180 && !limited; i++) {
      const res = await SELF.fetch(url, from(ip));
      if (res.status === 429) limited = res;
      else {
        await expectProblem(res, 401, "UNAUTHORIZED");
        refusedIds.push(res.headers.get("x-request-id")!);
      }
    }
    expect(limited).not.toBeNull();
    expect(refusedIds.length).toBeGreaterThanOrEqual(1);
    await expectProblem(limited!, 429, "RATE_LIMITED");
    expect(limited!.headers.get("retry-after")).toBe("60");
    // Another address is not held back, nor is an authenticated caller from the limited one.
    await expectProblem(await SELF.fetch(url, from(address())), 401, "UNAUTHORIZED");
    expect((await SELF.fetch(url, from(ip, bearer(await mintToken("platform_admin"))))).status).toBe(200);
    // Both kinds stay audited, aggregated per address and reason.
    const refusal = await refusalEntry(refusedIds[0]!);
    expect(refusal.details).toMatchObject({ aggregated: true, source: ip, reason: "missing bearer token", routes: ["GET /v1/plans"] });
    const overLimit = await refusalEntry(limited!.headers.get("x-request-id")!);
    expect(overLimit.details).toMatchObject({ aggregated: true, source: ip, reason: "rate limited" });
  });

  it("limits authenticated requests per token (the token's hash is the key, never the token)", async () => {
    const token = await mintToken("platform_admin", [], { sub: `flood-${crypto.randomUUID()}` });
    const key = `tok:${await sha256Hex(token)}`;
    // Spend the token's budget through the binding itself (10000 a minute, wrangler.toml).
    let spent = 0;
    while ((await env.TOKEN_RATE_LIMITER.limit({ key })).success) spent++;
    expect(spent).toBeGreaterThan(0);
    const res = await SELF.fetch(url, { headers: bearer(token) });
    await expectProblem(res, 429, "RATE_LIMITED");
    expect(res.headers.get("retry-after")).toBe("60");
    // Another token of the same person is not affected.
    expect((await SELF.fetch(url, { headers: bearer(await mintToken("platform_admin")) })).status).toBe(200);
  });

  it("aggregates refusals: one platform entry per source, reason and window, with the count", async () => {
    const ip = address();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await SELF.fetch(url, from(ip, { authorization: "Bearer not.a.jwt" }));
      await expectProblem(res, 401, "UNAUTHORIZED");
      ids.push(res.headers.get("x-request-id")!);
    }
    await refusalEntry(ids.at(-1)!);
    const entries = await testDb()
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.chain, "platform"), eq(auditLog.action, "auth.authenticate"), like(auditLog.details, `%"${ip}"%`)));
    const details = entries.map((e) => e.details as { count: number; reason: string; requestIds: string[] });
    expect(details.reduce((n, d) => n + d.count, 0)).toBe(5);
    expect(entries.length).toBeLessThan(5);
    expect(details.flatMap((d) => d.requestIds).sort()).toEqual([...ids].sort());
    expect(JSON.stringify(entries)).not.toContain("not.a.jwt");
  });

  it("refuses to run without its rate limiting bindings: 500 CONFIG_INVALID naming them", async () => {
    const res = await worker.fetch(new Request(url, { headers: bearer(await mintToken("platform_admin")) }), { ...env, TOKEN_RATE_LIMITER: undefined } as unknown as typeof env, createExecutionContext());
    const body = await expectProblem(res, 500, "CONFIG_INVALID");
    expect(body.detail).toContain("TOKEN_RATE_LIMITER");
  });
});
