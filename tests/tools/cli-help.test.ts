// Every npm script's program answers `--help` with its usage on stdout and exit 0, before starting
// anything (no servers, no network), and an unknown option with the error and the usage on stderr
// and exit 2.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // BILLING_URL points nowhere reachable: should a script get past its arguments, it fails fast.
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, BILLING_URL: "http://127.0.0.1:9" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** npm script → its program and every option its usage must name. */
const scripts: Record<string, { file: string; options: string[] }> = {
  token: { file: "tools/token.mjs", options: ["--role", "--office", "--sub", "--ttl", "--help"] },
  billing: { file: "tools/billing.mjs", options: ["run", "office", "--date", "--dry-run", "--url", "--help", "BILLING_TOKEN"] },
  "keys:rotate": { file: "tools/keys-rotate.mjs", options: ["--key", "--url", "--office", "--batch", "--help", "BILLING_TOKEN", "patients", "index"] },
  db: { file: "tools/libsql-server/cli.mjs", options: ["--port", "--host", "--file", "--memory", "--auth-token", "--stream-idle-ms", "--busy-timeout-ms", "--latency-ms"] },
  stripe: { file: "tools/stripe-emulator/cli.mjs", options: ["--port", "--host", "--webhook-url", "--webhook-secret", "--rps", "--fault-rate", "--fault-kinds", "--timeout-ms", "--seed", "--latency-ms"] },
  bench: { file: "tools/bench.mjs", options: ["--offices", "--patients", "--duration", "--connections", "--stripe-rps", "--skip-invoicing", "--invoicing-only", "--activations-only", "--analytics-only", "--analytics-offices", "--storage", "--help"] },
  "stripe:setup": { file: "tools/stripe-setup.mjs", options: ["--webhook-url", "--return-url", "--help", "STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WORKER_KEY"] },
  "stripe:smoke": { file: "tools/stripe-smoke.mjs", options: ["--help", "STRIPE_SECRET_KEY", "STRIPE_API_BASE"] },
  drill: { file: "tools/drill.mjs", options: ["--short", "--only", "--help"] },
  "test:worker": { file: "tools/test-worker.mjs", options: ["--batch", "--plan", "filter", "--help", "WORKER_TEST_STALL_SECONDS", "WORKER_TEST_STALL_RETRIES"] },
  dev: { file: "tools/dev.mjs", options: ["--fresh", "--port", "--db-port", "--stripe-port", "--data", "--no-seed", "--help"] },
  "client:generate": { file: "tools/client-generate.mjs", options: ["--check", "--help", "client/schema.d.ts"] },
};

describe("--help on every script", () => {
  it("package.json's scripts run these programs", () => {
    const pkg = JSON.parse(readFileSync(`${root}/package.json`, "utf8")) as { scripts: Record<string, string> };
    for (const [name, { file }] of Object.entries(scripts)) expect(pkg.scripts[name]).toBe(`node ${file}`);
  });

  for (const [name, { file, options }] of Object.entries(scripts)) {
    describe(name, () => {
      for (const flag of ["--help", "-h"]) {
        it(`${flag}: usage on stdout, exit 0, nothing started`, async () => {
          const started = Date.now();
          const { code, stdout, stderr } = await run(process.execPath, [file, flag]);
          expect(code).toBe(0);
          expect(stdout).toMatch(/^usage:/);
          for (const option of options) expect(stdout).toContain(option);
          expect(stderr).toBe("");
          // No server came up: nothing announced, and the process ended on its own, promptly.
          expect(stdout).not.toContain("listening on");
          expect(Date.now() - started).toBeLessThan(10_000);
        });
      }

      it("an unknown option: the error and the usage on stderr, exit 2", async () => {
        const { code, stdout, stderr } = await run(process.execPath, [file, "--no-such-option"]);
        expect(code).toBe(2);
        expect(stderr).toContain("Unknown option '--no-such-option'");
        expect(stderr).toMatch(/^usage:/m);
        expect(stdout).toBe("");
      });
    });
  }

  it("through npm: `npm run token -- --help`", async () => {
    const { code, stdout } = await run("npm", ["run", "token", "--", "--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("usage: npm run token -- --role <role>");
    expect(stdout).not.toContain("Unknown option");
  });
});
