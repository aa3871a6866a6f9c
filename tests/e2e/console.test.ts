import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error -- plain ESM JavaScript tool
import { freePort } from "../../tools/lib/stack.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { readDevVars } from "../../tools/lib/dev-vars.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { devToken } from "../../tools/token.mjs";

const root = join(import.meta.dirname, "..", "..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const artifacts = join(root, "test-artifacts");
// CI installs Debian's chromium (.ci/run); on a machine without it the test says so and is skipped.
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);

type Demo = { offices: Record<"lakeside" | "harbor" | "spree", { id: string; legalName: string }> };

let dev: ChildProcess | undefined;
let browser: Browser | undefined;
let base = "";
let stripeBase = "";
let demo: Demo;
const dataDir = mkdtempSync(join(tmpdir(), "console-test-"));

function token(role: string, officeIds: string[] = []) {
  const vars = readDevVars(join(root, ".dev.vars")) as Record<string, string>;
  return devToken(vars, { role, officeIds, sub: `e2e-console-${role}` }) as string;
}

/** A fresh tab (its own sessionStorage) signed in with `token`; page errors and console errors collected. */
async function signedIn(tokenValue: string, errors: string[]): Promise<Page> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    // Once the portal button has left for Stripe's page (the emulator's), that page's own requests
    // (its favicon, answered 401 like any unauthenticated Stripe request) are not the console's.
    if (m.type() === "error" && !m.location().url.startsWith(stripeBase)) errors.push(`${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${base}/console`, { waitUntil: "load" });
  // No token yet: the token form.
  await page.locator("[data-test=token]").fill(tokenValue);
  await page.locator("[data-test=use-token]").click();
  return page;
}

async function go(page: Page, hash: string) {
  await page.evaluate((h) => (location.hash = h), hash);
}

/** Painted pixels of the chart's canvas: a drawn chart has thousands, an empty canvas none. */
async function painted(page: Page, testId: string): Promise<number> {
  const box = page.locator(`[data-test=${testId}]`);
  await box.locator("canvas").waitFor({ timeout: 30_000 });
  return box.evaluate((el) => {
    const canvas = el.querySelector("canvas")!;
    const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
    return n;
  });
}

const shot = async (page: Page, name: string) => {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, name), fullPage: true });
  expect(existsSync(join(artifacts, name))).toBe(true);
};

describe.skipIf(!haveBrowser)("the billing console in a real browser (Debian chromium, npm run dev's demo)", () => {
  beforeAll(async () => {
    const [port, dbPort, stripePort] = [await freePort(), await freePort(), await freePort()];
    base = `http://127.0.0.1:${port}`;
    stripeBase = `http://127.0.0.1:${stripePort}`;
    dev = spawn(process.execPath, [join(root, "tools/dev.mjs"), "--port", String(port), "--db-port", String(dbPort), "--stripe-port", String(stripePort), "--data", dataDir], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    let out = "";
    dev.stdout!.on("data", (d) => (out += d));
    dev.stderr!.on("data", (d) => (out += d));
    const deadline = Date.now() + 170_000;
    while (!out.includes("dev: ready")) {
      if (dev.exitCode !== null || Date.now() > deadline) throw new Error(`npm run dev did not get ready:\n${out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    demo = JSON.parse(readFileSync(join(dataDir, "demo.json"), "utf8")) as Demo;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (dev && dev.exitCode === null) {
      dev.kill("SIGTERM");
      await new Promise((r) => dev!.once("exit", r));
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("platform admin: the portfolio's charts, the office list and its search, an office page with invoices, hosted links and the portal", async () => {
    const errors: string[] = [];
    const page = await signedIn(token("platform_admin"), errors);
    await page.waitForURL(/#\/portfolio$/);
    expect(await page.locator("#nav a:not(.hidden)").allTextContents()).toEqual(["Portfolio", "Offices"]);

    // The portfolio: the demo's three offices, Spree past due, three drawn charts.
    await expect(page.locator("[data-test=kpi-offices] .value").textContent({ timeout: 60_000 })).resolves.toBe("3");
    expect(await page.locator("[data-test=kpi-past-due-offices] .value").textContent()).toBe("1");
    expect(await page.locator("[data-test=kpi-unpaid] .value").textContent()).toMatch(/^\$[1-9][\d,]*\.\d\d/);
    for (const chart of ["chart-mrr", "chart-patients", "chart-ageing"]) {
      expect(Number(await page.locator(`[data-test=${chart}]`).getAttribute("data-points")), chart).toBeGreaterThan(0);
      expect(await painted(page, chart), chart).toBeGreaterThan(2000);
    }
    // Its figures come from the platform analytics API when this Worker has one, else from the page.
    const spec = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(await page.locator("[data-test=source]").textContent()).toMatch(spec.paths["/v1/analytics/platform"] ? /^Figures from the platform analytics API/ : /^Computed in this page from 3 offices/);
    await shot(page, "console-portfolio.png");

    // The office list, then a search by legal-name prefix, then one that finds nothing.
    await go(page, "#/offices");
    const rows = page.locator("[data-test=offices] tbody tr");
    await page.waitForFunction(() => document.querySelectorAll("[data-test=offices] tbody tr").length === 3, undefined, { timeout: 30_000 });
    expect(await rows.locator("td:first-child").allTextContents()).toEqual(["Harbor Pediatrics PC", "Lakeside Family Practice LLC", "Praxis an der Spree GmbH"]);
    expect(await page.locator("[data-office] td:nth-child(3)").allTextContents()).toEqual(["Growth v1", "Essentials v1", "Essentials v1"]);
    await page.locator("[data-test=search]").fill("praxis");
    await page.locator("form.search button").click();
    await page.waitForURL(/#\/offices\?q=praxis$/);
    await page.waitForFunction(() => document.querySelector("[data-test=count]")?.textContent === "1 office.", undefined, { timeout: 30_000 });
    expect(await rows.locator("td:first-child").allTextContents()).toEqual(["Praxis an der Spree GmbH"]);
    expect(await rows.locator(".badge").textContent()).toBe("past due");
    await shot(page, "console-offices.png");
    await page.locator("[data-test=search]").fill("Nobody");
    await page.locator("form.search button").click();
    await page.waitForFunction(() => document.querySelector("[data-test=count]")?.textContent?.startsWith("No office"), undefined, { timeout: 30_000 });
    expect(await rows.count()).toBe(0);

    // Spree's page: past due, its failed invoice open with Stripe's hosted page and PDF.
    await go(page, "#/offices");
    await page.locator("a", { hasText: "Praxis an der Spree GmbH" }).click();
    await page.waitForURL(new RegExp(`#/offices/${demo.offices.spree.id}$`));
    await page.locator("[data-test=invoices]").waitFor({ timeout: 30_000 });
    expect(await page.locator("[data-test=status]").textContent()).toBe("past_due");
    const spreeOpen = page.locator("[data-test=invoices] tbody tr", { has: page.locator(".badge.open") });
    expect(await spreeOpen.count()).toBeGreaterThanOrEqual(1);
    expect(await spreeOpen.first().locator("[data-test=hosted]").getAttribute("href")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);

    // Lakeside's page: status, plan, card on file, billable patients per cycle, paid invoice links.
    await go(page, `#/offices/${demo.offices.lakeside.id}`);
    await page.waitForFunction(() => document.querySelector("[data-test=office-name]")?.textContent?.startsWith("Lakeside"), undefined, { timeout: 30_000 });
    await page.locator("[data-test=invoices]").waitFor({ timeout: 30_000 });
    expect(await page.locator("[data-test=status]").textContent()).toBe("active");
    expect(await page.locator("[data-test=plan]").textContent()).toBe("Essentials v1");
    expect(await page.locator("[data-test=payment-method]").textContent()).toMatch(/•••• \d{4}/);
    expect(Number(await page.locator("[data-test=chart-office-patients]").getAttribute("data-points"))).toBeGreaterThanOrEqual(2);
    expect(await painted(page, "chart-office-patients")).toBeGreaterThan(2000);
    const paid = page.locator("[data-test=invoices] tbody tr", { has: page.locator(".badge.paid") });
    expect(await paid.count()).toBeGreaterThanOrEqual(1);
    const hosted = paid.first().locator("[data-test=hosted]");
    expect(await hosted.getAttribute("href")).toMatch(new RegExp(`^${stripeBase}/`));
    expect(await hosted.getAttribute("rel")).toBe("noopener noreferrer");
    expect(await paid.first().locator("[data-test=pdf]").getAttribute("href")).toMatch(new RegExp(`^${stripeBase}/`));
    // The current cycle's draft: its running patient count, no Stripe documents yet.
    expect(await page.locator("[data-test=invoices] tbody tr", { has: page.locator(".badge.draft") }).locator("td.links").textContent()).toBe("current cycle");
    await shot(page, "console-office.png");

    // The billing-portal button opens a session and goes to Stripe's portal (the emulator's).
    const portal = page.waitForResponse((r) => r.url().endsWith(`/v1/offices/${demo.offices.lakeside.id}/billing-portal`) && r.request().method() === "POST");
    await page.locator("[data-test=portal]").click();
    expect((await portal).status()).toBe(201);
    await page.waitForURL(new RegExp(`^${stripeBase}/`), { timeout: 30_000 });
    // CSP or script errors on any console page would be in here.
    expect(errors).toEqual([]);
    await page.context().close();
  }, 180_000);

  it("office admin: their own office only; the portfolio, the list and other offices are refused", async () => {
    const errors: string[] = [];
    const lakeside = demo.offices.lakeside.id;
    const adminToken = token("office_admin", [lakeside]);
    const page = await signedIn(adminToken, errors);
    await page.waitForURL(new RegExp(`#/offices/${lakeside}$`));
    await page.locator("[data-test=invoices]").waitFor({ timeout: 30_000 });
    expect(await page.locator("#nav a:not(.hidden)").allTextContents()).toEqual(["My office"]);
    expect(await page.locator("[data-test=office-name]").textContent()).toContain("Lakeside Family Practice LLC");
    expect(await page.locator("[data-test=portal]").count()).toBe(1);
    expect(await page.locator("[data-test=invoices] [data-test=hosted]").count()).toBeGreaterThanOrEqual(1);
    // The plan list is platform_admin's: the office page names the plan version.
    expect(await page.locator("[data-test=plan]").textContent()).toMatch(/^planv_/);
    await shot(page, "console-office-admin.png");

    for (const hash of ["#/portfolio", "#/offices", `#/offices/${demo.offices.spree.id}`]) {
      await go(page, hash);
      await page.locator("[data-test=refused]").waitFor({ timeout: 10_000 });
      expect(await page.locator("[data-test=office-name]").count(), hash).toBe(0);
      expect(await page.locator("[data-test=kpi-offices]").count(), hash).toBe(0);
    }
    await shot(page, "console-refused.png");
    expect(errors).toEqual([]);
    // What the console refuses, the API refuses too, with this token from this page.
    const answers = await page.evaluate(
      async ({ t, other }) =>
        Promise.all(["/v1/offices", `/v1/offices/${other}`, `/v1/offices/${other}/invoices`].map(async (p) => (await fetch(p, { headers: { authorization: `Bearer ${t}` }, signal: AbortSignal.timeout(30_000) })).status)),
      { t: adminToken, other: demo.offices.spree.id },
    );
    expect(answers).toEqual([403, 404, 404]);
    await page.context().close();
    errors.length = 0;

    // An office viewer reads the same page without the portal button.
    const viewer = await signedIn(token("office_viewer", [lakeside]), errors);
    await viewer.waitForURL(new RegExp(`#/offices/${lakeside}$`));
    await viewer.locator("[data-test=invoices]").waitFor({ timeout: 30_000 });
    expect(await viewer.locator("[data-test=portal]").count()).toBe(0);
    expect(errors).toEqual([]);
    await viewer.context().close();
  }, 180_000);
});
