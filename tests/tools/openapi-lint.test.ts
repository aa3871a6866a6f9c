import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { openApiDocument } from "../../src/http/docs/openapi";

/**
 * The contract client generators read: /openapi.json, generated here from the routes exactly as the
 * Worker generates it, passes Redocly's recommended ruleset (redocly.yaml) with no error and no
 * warning. `REDOCLY_BIN` may name another CLI build; by default the devDependency's.
 */
const run = promisify(execFile);
const root = resolve(__dirname, "../..");
const bin = process.env.REDOCLY_BIN ?? join(root, "node_modules/@redocly/cli/bin/cli.js");
const dir = mkdtempSync(join(tmpdir(), "openapi-lint-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Problem = { ruleId: string; severity: string; message: string; location?: { pointer?: string }[] };

describe("the OpenAPI document", () => {
  it("has an operationId on every operation, unique, and security declared on each (none on the public routes)", () => {
    const doc = openApiDocument(createApp()) as unknown as { paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>> };
    const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, ...op })));
    expect(ops.length).toBeGreaterThan(30);
    for (const op of ops) {
      expect(op.operationId, `${op.method} ${op.path}`).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.security, `${op.method} ${op.path}`).toEqual(op.path.startsWith("/v1/") ? [{ bearerAuth: [] }] : []);
    }
    expect(new Set(ops.map((o) => o.operationId)).size).toBe(ops.length);
  });

  it("passes `redocly lint` with the recommended rules: no error, no warning", async () => {
    expect(existsSync(bin), `${bin} (npm install: @redocly/cli is a devDependency)`).toBe(true);
    const file = join(dir, "openapi.json");
    writeFileSync(file, JSON.stringify(openApiDocument(createApp())));
    let stdout = "";
    try {
      ({ stdout } = await run(process.execPath, [bin, "lint", "--config", join(root, "redocly.yaml"), "--format", "json", file], {
        cwd: root,
        env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" },
        maxBuffer: 64 * 1024 * 1024,
      }));
    } catch (err) {
      stdout = (err as { stdout?: string }).stdout ?? "";
      if (!stdout.trim().startsWith("{")) throw err;
    }
    const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number }; problems: Problem[] };
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? "?"}`);
    expect(problems).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 120_000);
});
