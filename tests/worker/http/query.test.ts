import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../src/app";
import { declaredQueries } from "../../../src/http/query";
import { bearer, mintToken } from "../../harness/auth";
import { expectProblem } from "../../harness/problem";

/** Example values for path parameters: the query check runs before any of them is looked at. */
const params: Record<string, string> = {
  officeId: "off_ffffffffffffffffffffffffffffffff",
  code: "NOSUCHCOUPON",
  invoiceId: "inv_ffffffffffffffffffffffffffffffff",
  planId: "plan_ffffffffffffffffffffffffffffffff",
  patientId: "pt-query",
  eventId: "evt_query",
  file: "swagger-ui.css",
  dataset: "invoices",
};

const registered = () =>
  createApp()
    .openAPIRegistry.definitions.filter((d) => d.type === "route")
    .map((d) => (d as { route: { method: string; path: string } }).route)
    .map((r) => ({ method: r.method.toUpperCase(), path: r.path.replace(/\{(\w+)\}/g, (_, p: string) => params[p]!) , template: `${r.method.toUpperCase()} ${r.path}` }));

/** Routes outside the OpenAPI registry (the reference itself): they declare no query either. */
const unregistered = [
  { method: "GET", path: "/openapi.json", template: "GET /openapi.json" },
  { method: "GET", path: "/docs", template: "GET /docs" },
  { method: "GET", path: "/docs/init.js", template: "GET /docs/init.js" },
  { method: "GET", path: "/docs/assets/swagger-ui.css", template: "GET /docs/assets/:file" },
];

async function send(method: string, path: string) {
  return SELF.fetch(`https://billing.test${path}`, {
    method,
    headers: { ...bearer(await mintToken("platform_admin")), ...(method === "POST" ? { "content-type": "application/json" } : {}) },
    ...(method === "POST" ? { body: "{}" } : {}),
  });
}

describe("undeclared query parameters are refused on every route (issue 14 item 4)", () => {
  it("the registry lists every /v1 route, the webhook and the health check", () => {
    const routes = registered().map((r) => r.template);
    expect(routes.filter((r) => r.includes(" /v1/")).length).toBeGreaterThan(20);
    expect(routes).toContain("POST /webhooks/stripe");
    expect(routes).toContain("GET /health");
    // Every parameter of every route has an example value above.
    for (const r of registered()) expect(r.path, r.template).not.toMatch(/undefined|\{/);
  });

  it("the reference documents the 400 on every route", async () => {
    const doc = (await (await SELF.fetch("https://billing.test/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    for (const r of registered()) {
      const [method, template] = r.template.split(" ") as [string, string];
      expect(Object.keys(doc.paths[template]![method.toLowerCase()]!.responses), r.template).toContain("400");
    }
  });

  for (const route of [...registered(), ...unregistered]) {
    it(`${route.template} refuses an undeclared parameter with a 400 that does not echo it`, async () => {
      const res = await send(route.method, `${route.path}?ssn_123-45-6789=jane`);
      const body = await expectProblem(res, 400, "VALIDATION_FAILED");
      expect(body.errors).toEqual([{ path: "query", message: "undeclared parameter" }]);
      // The request id is random hex (it may hold "6789" by chance): everything else is checked.
      const { requestId, ...rest } = body as typeof body & { requestId?: string };
      expect(requestId).toMatch(/^req_[0-9a-f]{32}$/);
      expect(JSON.stringify(rest)).not.toMatch(/ssn|6789|jane/);
    });
  }

  it("declared parameters still work; a repeated one is refused", async () => {
    expect((await send("GET", "/v1/plans?status=active")).status).toBe(200);
    const body = await expectProblem(await send("GET", "/v1/plans?status=active&status=retired"), 400, "VALIDATION_FAILED");
    expect(body.errors).toEqual([{ path: "status", message: "repeated parameter" }]);
    // A plain name is named, like an undeclared body field; any other is not echoed.
    const named = await expectProblem(await send("POST", "/v1/offices?patientName=Jane&mrn%3D4471=1"), 400, "VALIDATION_FAILED");
    expect(named.errors).toEqual([
      { path: "patientName", message: "undeclared parameter" },
      { path: "query", message: "undeclared parameter" },
    ]);
    expect(JSON.stringify(named)).not.toMatch(/Jane|4471/);
    // A bare "?" carries no parameter.
    expect((await send("GET", "/v1/plans?")).status).toBe(200);
  });

  it("reads each route's declared names from its OpenAPI query schema", () => {
    const table = declaredQueries(createApp());
    expect([...table.get("GET /v1/plans")!]).toEqual(["status"]);
    expect([...table.get("POST /v1/offices")!]).toEqual([]);
    expect(table.get("GET /v1/offices/:officeId/invoices")!.has("cursor")).toBe(true);
  });

  it("a path no route matches is still a 404", async () => {
    await expectProblem(await send("GET", "/v1/nothing-here?x=1"), 404, "NOT_FOUND");
  });
});
