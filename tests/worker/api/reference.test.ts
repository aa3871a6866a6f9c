import { SELF } from "cloudflare:test";
import type { z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../src/app";
import { bearer, mintToken } from "../../harness/auth";

type JsonSchema = {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  example?: unknown;
  examples?: unknown[];
  default?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  format?: string;
  minimum?: number;
  additionalProperties?: unknown;
};
type Operation = {
  description?: string;
  summary?: string;
  security?: unknown[];
  requestBody?: { content: Record<string, { schema: JsonSchema; example?: unknown }> };
  responses: Record<string, { content?: Record<string, { schema: JsonSchema; example?: unknown }> }>;
  parameters?: { name: string; in: string; schema: JsonSchema; example?: unknown }[];
};
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, unknown> } };

async function spec(): Promise<Doc> {
  const res = await SELF.fetch("https://billing.test/openapi.json");
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
}

/** Every registered route, with its zod schemas. */
function registered() {
  return createApp()
    .openAPIRegistry.definitions.filter((d) => d.type === "route")
    .map((d) => (d as unknown as { route: RouteConfig }).route);
}
type RouteConfig = {
  method: string;
  path: string;
  request?: { body?: { content: Record<string, { schema: z.ZodType }> }; params?: z.ZodType; query?: z.ZodType };
  responses: Record<string, { content?: Record<string, { schema: z.ZodType }> }>;
};

/** The example a reader of the reference sees: the schema's own example, else one built from its fields' examples (as Swagger UI builds it). */
function exampleOf(schema: JsonSchema, doc: Doc, depth = 0): unknown {
  if (depth > 12) return null;
  if (schema.$ref) return exampleOf(doc.components.schemas[schema.$ref.replace("#/components/schemas/", "")]!, doc, depth + 1);
  if (schema.example !== undefined) return schema.example;
  if (schema.examples?.length) return schema.examples[0];
  if (schema.const !== undefined) return schema.const;
  if (schema.default !== undefined) return schema.default;
  if (schema.enum?.length) return schema.enum[0];
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s) => exampleOf(s, doc, depth + 1) as object));
  const alt = schema.anyOf ?? schema.oneOf;
  if (alt) return exampleOf(alt.find((s) => s.type !== "null") ?? alt[0]!, doc, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object":
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, exampleOf(v, doc, depth + 1)]));
    case "array":
      return schema.items ? [exampleOf(schema.items, doc, depth + 1)] : [];
    case "integer":
    case "number":
      return schema.minimum ?? 0;
    case "boolean":
      return true;
    case "null":
      return null;
    case "string":
      return schema.format === "date-time" ? "2026-11-23T10:00:00.000Z" : schema.format === "date" ? "2026-11-01" : schema.format === "uri" ? "https://example.com/x" : "string";
    default:
      return null;
  }
}

const openApiPath = (path: string) => path.replace(/\{(\w+)\}/g, "{$1}");

describe("the API reference", () => {
  it("serves the OpenAPI 3.1 document and the Swagger UI page with its files", async () => {
    const doc = await spec();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes).toHaveProperty("bearerAuth");
    const page = await SELF.fetch("https://billing.test/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain("/docs/assets/swagger-ui-bundle.js");
    for (const path of ["/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/init.js"]) {
      const res = await SELF.fetch(`https://billing.test${path}`);
      expect(res.status, path).toBe(200);
      expect((await res.text()).length, path).toBeGreaterThan(path.endsWith("init.js") ? 50 : 10_000);
    }
    // Only the files the page needs are served, not the package's other files.
    expect((await SELF.fetch("https://billing.test/docs/assets/package.json")).status).toBe(404);
    expect((await SELF.fetch("https://billing.test/index.html")).status).toBe(404);
  });

  it("lists every registered route, each with its roles, its errors in problem+json and its security", async () => {
    const doc = await spec();
    const routes = registered();
    expect(routes.length).toBeGreaterThan(25);
    for (const r of routes) {
      const op = doc.paths[openApiPath(r.path)]?.[r.method];
      expect(op, `${r.method.toUpperCase()} ${r.path} is in the document`).toBeTruthy();
      const statuses = Object.keys(op!.responses);
      expect(statuses.some((s) => s.startsWith("2")), `${r.path} documents a success`).toBe(true);
      // /health's 503 is the health answer itself ({ status: "degraded" }), not an error of a request.
      for (const s of statuses.filter((x) => Number(x) >= 400 && !(r.path === "/health" && x === "503"))) {
        expect(Object.keys(op!.responses[s]!.content ?? {}), `${r.method} ${r.path} ${s}`).toEqual(["application/problem+json"]);
        expect(op!.responses[s]!.content!["application/problem+json"]!.schema.$ref).toBe("#/components/schemas/Problem");
      }
      if (r.path.startsWith("/v1/")) {
        expect(op!.description ?? "", `${r.method} ${r.path} names its roles`).toMatch(/Required role: (platform_admin|office_admin|clinical_system)/);
        expect(op!.security, `${r.path} needs a bearer token`).toEqual([{ bearerAuth: [] }]);
        expect(statuses, `${r.path} documents 401 and 403`).toEqual(expect.arrayContaining(["401", "403"]));
      }
    }
  });

  it("shows an example for every request body and JSON success, and every example validates against the route's schema", async () => {
    const doc = await spec();
    const problems: string[] = [];
    for (const r of registered()) {
      const op = doc.paths[openApiPath(r.path)]![r.method]!;
      const body = r.request?.body?.content["application/json"];
      if (body) {
        const example = op.requestBody!.content["application/json"]!.example ?? exampleOf(op.requestBody!.content["application/json"]!.schema, doc);
        const parsed = body.schema.safeParse(example);
        if (!parsed.success) problems.push(`${r.method} ${r.path} request: ${JSON.stringify(parsed.error.issues.map((i) => [i.path.join("."), i.message]))}`);
      }
      for (const [status, response] of Object.entries(r.responses)) {
        const json = response.content?.["application/json"];
        if (!json || !status.startsWith("2")) continue;
        const documented = op.responses[status]!.content!["application/json"]!;
        const example = documented.example ?? exampleOf(documented.schema, doc);
        const parsed = json.schema.safeParse(example);
        if (!parsed.success) problems.push(`${r.method} ${r.path} ${status}: ${JSON.stringify(parsed.error.issues.map((i) => [i.path.join("."), i.message]))}`);
      }
      for (const p of op.parameters ?? []) {
        if (p.in !== "path") continue;
        const value = p.example ?? exampleOf(p.schema, doc);
        const params = r.request?.params as z.ZodObject | undefined;
        const shape = params?.shape as Record<string, z.ZodType> | undefined;
        const parsed = shape?.[p.name]?.safeParse(value);
        if (parsed && !parsed.success) problems.push(`${r.method} ${r.path} path ${p.name}: ${parsed.error.issues[0]?.message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("answers only the statuses it documents, for requests without a token, with a bad token, a wrong role and malformed input", async () => {
    const doc = await spec();
    const viewer = await mintToken("office_viewer", ["off_00000000000000000000000000000001"]);
    const mismatches: string[] = [];
    // Each route's requests come from an address of their own: refused requests are rate limited
    // per client address (60 a minute), and this walk refuses two per route.
    let client = 0;
    for (const r of registered()) {
      if (!r.path.startsWith("/v1/")) continue;
      client++;
      const op = doc.paths[openApiPath(r.path)]![r.method]!;
      const documented = Object.keys(op.responses);
      const path = r.path.replace("{officeId}", "off_00000000000000000000000000000001").replace(/\{(\w+)\}/g, "x");
      const init = (headers: Record<string, string>, body?: string): RequestInit => ({
        method: r.method.toUpperCase(),
        headers: { "cf-connecting-ip": `198.51.100.${client % 250}`, ...headers, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(body !== undefined ? { body } : {}),
      });
      const hasBody = !!r.request?.body;
      const attempts: [string, RequestInit][] = [
        ["no token", init({}, hasBody ? "{}" : undefined)],
        ["bad token", init({ authorization: "Bearer not.a.jwt" }, hasBody ? "{}" : undefined)],
        ["viewer", init(bearer(viewer), hasBody ? "{}" : undefined)],
      ];
      if (hasBody) attempts.push(["malformed JSON as viewer", init(bearer(viewer), "{not json")]);
      for (const [what, req] of attempts) {
        const res = await SELF.fetch(`https://billing.test${path}`, req);
        if (!documented.includes(String(res.status))) mismatches.push(`${r.method.toUpperCase()} ${r.path} (${what}) → ${res.status}, documented ${documented.join(",")}`);
      }
    }
    expect(mismatches).toEqual([]);
  }, 240_000); // heavy: many requests; generous for a busy machine
});
