import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { openApiDocument } from "../../src/http/docs/openapi";
// @ts-expect-error -- plain ESM JavaScript tool
import { SCHEMA_FILE, schemaTypes } from "../../tools/lib/client-schema.mjs";

/**
 * The typed API client (docs/console.md, README): client/schema.d.ts is what openapi-typescript
 * makes of the OpenAPI document the routes generate, and the console and the operator CLI, which
 * call the API through openapi-fetch over it, type-check against it (tsconfig.clients.json). A
 * route changed without `npm run client:generate` fails the first test; a client calling a path,
 * parameter or field the API does not have fails the second; the third shows that the check does
 * catch such calls (the client is typed, not `any`).
 */
const run = promisify(execFile);
const root = resolve(__dirname, "../..");
const tsc = join(root, "node_modules/typescript/bin/tsc");
const dir = mkdtempSync(join(tmpdir(), "client-schema-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** tsc's diagnostics for a project ("" when it passes). */
async function typecheck(project: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [tsc, "-p", project, "--pretty", "false"], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

describe("the typed API client", () => {
  it(`${SCHEMA_FILE} is what the routes generate (else: npm run client:generate)`, async () => {
    const fresh = (await schemaTypes(openApiDocument(createApp()))) as string;
    const committed = readFileSync(join(root, SCHEMA_FILE), "utf8");
    if (committed !== fresh) {
      const a = committed.split("\n");
      const b = fresh.split("\n");
      const i = a.findIndex((line, n) => line !== b[n]);
      const at = i < 0 ? Math.min(a.length, b.length) : i;
      expect.fail(`${SCHEMA_FILE} differs from the routes from line ${at + 1}:\n  committed: ${a[at] ?? "(end)"}\n  generated: ${b[at] ?? "(end)"}\nrun \`npm run client:generate\` and commit ${SCHEMA_FILE}`);
    }
    // Every operation of the document is in the types.
    const doc = openApiDocument(createApp()) as unknown as { paths: Record<string, Record<string, { operationId: string }>> };
    for (const [path, methods] of Object.entries(doc.paths)) {
      expect(committed, path).toContain(`"${path}": {`);
      for (const op of Object.values(methods)) expect(committed, op.operationId).toContain(`operations["${op.operationId}"]`);
    }
  }, 60_000);

  it("the console and the operator CLI type-check against it (tsc -p tsconfig.clients.json)", async () => {
    const { code, out } = await typecheck(join(root, "tsconfig.clients.json"));
    expect(out).toBe("");
    expect(code).toBe(0);
  }, 120_000);

  it("the check refuses a call the API does not have: unknown path, wrong parameter, body or answer field", async () => {
    const file = join(dir, "misuse.mjs");
    const lines = [
      "// @ts-check",
      `import { must, typedClient } from ${JSON.stringify(join(root, "tools/lib/api.mjs"))};`,
      `import { api, ok } from ${JSON.stringify(join(root, "console/api.js"))};`,
      'const cli = typedClient("http://127.0.0.1:8787", "token");',
      'await must(cli.GET("/v1/offices/{officeId}", { params: { path: { id: "off_1" } } }));', // 5: wrong path parameter
      'await must(cli.GET("/v1/no-such-route"));', // 6: no such path
      'await must(cli.POST("/v1/admin/invoicing-runs", { body: { date: 20261201 } }));', // 7: a number for a date string
      'const office = await must(cli.GET("/v1/offices/{officeId}", { params: { path: { officeId: "off_1" } } }));',
      "console.log(office.noSuchField);", // 9: no such answer field
      'await ok(api.GET("/v1/offices", { params: { query: { sort: "name" } } }));', // 10: not a sort the API takes
      'await ok(api.GET("/v1/offices", { params: { query: { sort: "legalName", limit: 50 } } }));', // fine
      "export {};",
    ];
    writeFileSync(file, lines.join("\n") + "\n");
    const project = join(dir, "tsconfig.json");
    writeFileSync(
      project,
      JSON.stringify({ extends: join(root, "tsconfig.clients.json"), compilerOptions: { typeRoots: [join(root, "node_modules/@types")] }, include: [file], files: [join(root, "client/schema.d.ts"), join(root, "console/openapi-fetch.d.ts")] }),
    );
    const { code, out } = await typecheck(project);
    expect(code).not.toBe(0);
    const errorLines = new Set([...out.matchAll(/misuse\.mjs\((\d+),\d+\): error/g)].map((m) => Number(m[1])));
    expect([...errorLines].sort((a, b) => a - b)).toEqual([5, 6, 7, 9, 10]);
    // The project's own files still pass: only the misuse fails.
    expect(out.split("\n").filter((l) => /error TS/.test(l) && !l.includes("misuse.mjs"))).toEqual([]);
  }, 120_000);
});
