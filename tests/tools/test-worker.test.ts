// tools/test-worker.mjs: every Worker test file in exactly one batch; a silent (wedged) batch is
// killed with its process group and started again; a failing batch is never retried and fails
// the command. A stand-in runner (WORKER_TEST_RUNNER) plays vitest.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["tools/test-worker.mjs", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stdout += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout }));
  });
}

function workerTestFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return workerTestFiles(path);
    return name.endsWith(".test.ts") ? [relative(root, path)] : [];
  });
}

/** A stand-in for vitest: behaves per attempt as `script` says (attempts counted in its DIR). */
function standIn(script: string): { runner: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "test-worker-"));
  const runner = join(dir, "runner.mjs");
  writeFileSync(
    runner,
    `import { readdirSync, writeFileSync } from "node:fs";
const DIR = ${JSON.stringify(dir)};
const attempt = readdirSync(DIR).filter((f) => f.startsWith("attempt-")).length + 1;
writeFileSync(DIR + "/attempt-" + attempt, process.argv.slice(2).join(" "));
${script}
`,
  );
  return { runner, dir };
}

describe("npm run test:worker", () => {
  it("plans every Worker test file into exactly one batch of at most --batch files", async () => {
    const { code, stdout } = await run(["--plan", "--batch", "3"]);
    expect(code).toBe(0);
    const planned = stdout
      .trim()
      .split("\n")
      .map((line) => line.replace(/^batch \d+: /, "").split(" "));
    for (const batch of planned) expect(batch.length).toBeLessThanOrEqual(3);
    expect(planned.flat().sort()).toEqual(workerTestFiles(join(root, "tests/worker")).sort());
  });

  it("kills a batch that goes silent (its whole process group) and starts it again; passes when the retry passes", async () => {
    // First attempt: prints, then a child of its own hangs silently (as workerd does); second: passes.
    const { runner, dir } = standIn(`
import { spawn } from "node:child_process";
if (attempt === 1) {
  console.log("RUN (stand-in)");
  const orphan = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  writeFileSync(DIR + "/orphan-pid", String(orphan.pid));
  setInterval(() => {}, 1000);
} else {
  console.log("Test Files  1 passed (1)");
}`);
    const { code, stdout } = await run(["health"], { WORKER_TEST_RUNNER: runner, WORKER_TEST_STALL_SECONDS: "2" });
    expect(stdout).toContain("no output for 2 s (workerd wedged); killed, starting it again");
    expect(stdout).toContain("attempt 2");
    expect(stdout).toMatch(/batch 1\/1: passed/);
    expect(code).toBe(0);
    const orphan = Number(readFileSync(join(dir, "orphan-pid"), "utf8"));
    // Gone with its group (a zombie awaiting a reaper counts as gone).
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${orphan}/stat`, "utf8"));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive()).toBe(false);
  }, 30_000);

  it("a batch whose tests fail is not retried, and the command fails naming its files", async () => {
    const { runner, dir } = standIn(`console.log("1 failed"); process.exit(1);`);
    const { code, stdout } = await run(["health"], { WORKER_TEST_RUNNER: runner, WORKER_TEST_STALL_SECONDS: "2" });
    expect(code).toBe(1);
    expect(stdout).toContain("FAILED: batch 1/1 (tests/worker/health.test.ts)");
    expect(readdirSync(dir).filter((f) => f.startsWith("attempt-"))).toHaveLength(1);
  }, 30_000);

  it("a batch whose runtime failed to load vitest's modules runs once more; a second such failure fails", async () => {
    const once = standIn(`if (attempt === 1) { console.error('workerd/server/fallback-service.c++:223: error: Fallback service failed to fetch module'); process.exit(1); } console.log("passed");`);
    const first = await run(["health"], { WORKER_TEST_RUNNER: once.runner });
    expect(first.stdout).toContain("failed to load a module (vitest's, not a test's); running it once more");
    expect(first.code).toBe(0);
    const always = standIn(`console.error('Error running worker: Error: No such module "work/node_modules/vitest/dist/chunks/chai".'); process.exit(1);`);
    const second = await run(["health"], { WORKER_TEST_RUNNER: always.runner });
    expect(second.code).toBe(1);
    expect(readdirSync(always.dir).filter((f) => f.startsWith("attempt-"))).toHaveLength(2);
  }, 30_000);

  it("a batch that stays wedged fails after its retries", async () => {
    const { runner } = standIn(`setInterval(() => {}, 1000);`);
    const { code, stdout } = await run(["health"], { WORKER_TEST_RUNNER: runner, WORKER_TEST_STALL_SECONDS: "1", WORKER_TEST_STALL_RETRIES: "1" });
    expect(code).toBe(1);
    expect(stdout).toMatch(/batch 1\/1: stalled 2 times/);
  }, 30_000);
});
