import { createExecutionContext, env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";

describe("GET /health", () => {
  it("answers 200 with db ok when the database answers", async () => {
    const res = await SELF.fetch("https://billing.test/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: "ok", db: "ok" });
    expect(res.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
  });

  it("answers 503 with db unreachable when the database does not answer", async () => {
    // A port nothing listens on: the real client fails to connect.
    const down = { ...env, TURSO_DATABASE_URL: "http://127.0.0.1:9/" };
    const res = await worker.fetch(new Request("https://billing.test/health"), down, createExecutionContext());
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "degraded", db: "unreachable" });
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("answers 503 when the database rejects our credentials", async () => {
    const wrongToken = { ...env, TURSO_AUTH_TOKEN: "not-the-token" };
    const res = await worker.fetch(new Request("https://billing.test/health"), wrongToken, createExecutionContext());
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "degraded", db: "unreachable" });
  });
});
