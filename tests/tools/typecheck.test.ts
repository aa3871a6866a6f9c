import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");

// The type checker is part of the test command: a type error in src or tests fails CI, as a failing
// test does. Every tsconfig*.json at the root is checked here, except the typed clients' (the
// console and the CLI), which tests/tools/client-schema.test.ts checks with its generated types.
const configs = readdirSync(root).filter((f) => /^tsconfig(\.[\w-]+)?\.json$/.test(f) && f !== "tsconfig.clients.json");

describe("type check", () => {
  it("finds the project's tsconfig", () => {
    expect(configs).toContain("tsconfig.json");
  });

  for (const config of configs) {
    it(`tsc --noEmit -p ${config} reports no errors`, () => {
      const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
      expect(existsSync(tsc)).toBe(true);
      const run = spawnSync(process.execPath, [tsc, "--noEmit", "-p", config], { cwd: root, encoding: "utf8", timeout: 170_000 });
      expect(run.error).toBeUndefined();
      expect(`${run.stdout}${run.stderr}`.trim()).toBe("");
      expect(run.status).toBe(0);
    }, 180_000);
  }
});
