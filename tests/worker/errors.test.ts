import { createExecutionContext, env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { expectProblem } from "../harness/problem";

function fetchWith(overrides: Record<string, unknown>, path = "/health") {
  return worker.fetch(new Request(`https://billing.test${path}`), { ...env, ...overrides }, createExecutionContext());
}

describe("one error model", () => {
  it("answers unknown routes with a 404 problem", async () => {
    const res = await SELF.fetch("https://billing.test/nothing-here");
    const body = await expectProblem(res, 404, "NOT_FOUND");
    expect(body.detail).toBe("No route matches this GET request's path.");
    expect(body.type).toBe("https://docs.office-billing.dev/problems/not_found");
  });

  it("answers a wrong method on a known path with a problem, not HTML", async () => {
    const res = await SELF.fetch("https://billing.test/health", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    await expectProblem(res, 404, "NOT_FOUND");
  });

  it("does not echo the path (it may carry a patient id)", async () => {
    const res = await SELF.fetch("https://billing.test/v9/offices/x/patients/CANARY-MRN-779");
    const body = await expectProblem(res, 404, "NOT_FOUND");
    expect(JSON.stringify(body)).not.toContain("CANARY");
  });

  it("always issues its own request id, whatever the caller sends", async () => {
    const kept = await SELF.fetch("https://billing.test/health", { headers: { "x-request-id": "trace_abc12345" } });
    expect(kept.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    const replaced = await SELF.fetch("https://billing.test/nope", { headers: { "x-request-id": "<script>alert(1)</script>" } });
    expect(replaced.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    const body = await expectProblem(replaced, 404, "NOT_FOUND");
    expect(body.requestId).toBe(replaced.headers.get("x-request-id"));
  });
});

describe("configuration is validated before any route runs", () => {
  it("names a malformed variable without echoing its value", async () => {
    const secretish = "postgres://admin:hunter2@db.internal/prod";
    const res = await fetchWith({ TURSO_DATABASE_URL: secretish });
    const body = await expectProblem(res, 500, "CONFIG_INVALID");
    expect(body.detail).toContain("TURSO_DATABASE_URL");
    expect(JSON.stringify(body)).not.toContain("hunter2");
    expect(JSON.stringify(body)).not.toContain("db.internal");
  });

  it("names a missing variable", async () => {
    const res = await fetchWith({ ENVIRONMENT: undefined });
    const body = await expectProblem(res, 500, "CONFIG_INVALID");
    expect(body.detail).toContain("ENVIRONMENT");
  });

  it("requires a database token and TLS in production", async () => {
    const res = await fetchWith({ ENVIRONMENT: "production", TURSO_AUTH_TOKEN: "" });
    const body = await expectProblem(res, 500, "CONFIG_INVALID");
    expect(body.detail).toContain("TURSO_AUTH_TOKEN");
    expect(body.detail).toContain("TURSO_DATABASE_URL");
    expect(JSON.stringify(body)).not.toContain(String(env.TURSO_DATABASE_URL));
  });

  it("validates before routing: even an unknown route reports the configuration", async () => {
    const res = await fetchWith({ ENVIRONMENT: "staging" }, "/v1/unknown");
    const body = await expectProblem(res, 500, "CONFIG_INVALID");
    expect(body.detail).toContain("ENVIRONMENT");
    expect(JSON.stringify(body)).not.toContain("staging");
  });
});
