import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error -- plain ESM JavaScript tool
import { freePort } from "../../tools/lib/stack.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { generateLocalSecrets } from "../../tools/lib/secrets.mjs";

const root = join(import.meta.dirname, "..", "..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const artifacts = join(root, "test-artifacts");
// CI installs Debian's chromium (.ci/run); on a machine without it the test says so and is skipped.
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);

let worker: ChildProcess | undefined;
let browser: Browser | undefined;
let base = "";
let state = "";

describe.skipIf(!haveBrowser)("/docs in a real browser (Debian chromium, wrangler dev)", () => {
  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    state = mkdtempSync(join(tmpdir(), "docs-test-"));
    const secrets = generateLocalSecrets() as Record<string, string>;
    const vars = {
      ENVIRONMENT: "development",
      // The reference needs no database; the URL only has to be valid.
      TURSO_DATABASE_URL: "http://127.0.0.1:9",
      AUTH_ISSUER: "office-billing-docs-test",
      AUTH_AUDIENCE: "office-billing-api",
      ...secrets,
    };
    const wrangler = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");
    worker = spawn(
      process.execPath,
      [wrangler, "dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state, "--show-interactive-dev-session=false", ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_LOG_PATH: join(state, "logs") } },
    );
    let output = "";
    worker.stdout!.on("data", (d) => (output += d));
    worker.stderr!.on("data", (d) => (output += d));
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        if ((await fetch(`${base}/openapi.json`)).ok) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || worker.exitCode !== null) throw new Error(`wrangler dev did not start:\n${output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (worker && worker.exitCode === null) {
      worker.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 500));
      if (worker.exitCode === null) worker.kill("SIGKILL");
    }
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it("renders every operation of the API reference, with no script or policy errors", async () => {
    const spec = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.values(spec.paths).reduce((n, methods) => n + Object.keys(methods).length, 0);
    expect(operations).toBeGreaterThan(25);

    const page = await browser!.newPage({ viewport: { width: 1280, height: 2000 } });
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${base}/docs`, { waitUntil: "load" });
    await page.waitForSelector(".opblock", { timeout: 30_000 });
    await page.waitForFunction((n) => document.querySelectorAll(".opblock").length >= n, operations, { timeout: 30_000 });
    expect(await page.locator(".opblock").count()).toBe(operations);
    await expect(page.locator(".info .title").first().textContent()).resolves.toContain("Office billing API");
    // The page itself says how to get a token locally.
    await expect(page.locator(".info").first().textContent()).resolves.toContain("npm run token -- --role platform_admin");
    const summaries = await page.locator(".opblock-summary-description").allTextContents();
    expect(summaries).toEqual(expect.arrayContaining(["Report patient activations and deactivations (1 to 1,000)", "Refund a paid invoice, fully or in part (platform_admin)"]));

    // Open one operation: its roles, parameters and problem responses are shown.
    await page.locator(".opblock-summary", { hasText: "/v1/offices/{officeId}/charges" }).first().click();
    await page.waitForSelector(".opblock.is-open .responses-table", { timeout: 10_000 });
    const opened = await page.locator(".opblock.is-open").first().textContent();
    expect(opened).toContain("Required role: platform_admin");
    expect(opened).toContain("application/problem+json");

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "docs.png"), fullPage: false });
    expect(existsSync(join(artifacts, "docs.png"))).toBe(true);
    expect(errors).toEqual([]);
  }, 90_000);
});
