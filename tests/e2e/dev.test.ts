import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error -- plain ESM JavaScript tool
import { freePort } from "../../tools/lib/stack.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { readDevVars } from "../../tools/lib/dev-vars.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { apiClient } from "../../tools/lib/api.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { devToken } from "../../tools/token.mjs";

const root = join(import.meta.dirname, "..", "..");

type Dev = { proc: ChildProcess; output: () => string; base: string; dbUrl: string };
const running: ChildProcess[] = [];
const dataDir = mkdtempSync(join(tmpdir(), "dev-test-"));
const interruptedDir = mkdtempSync(join(tmpdir(), "dev-test-interrupted-"));

/** `npm run dev` (tools/dev.mjs) on free ports with its own data folder; resolves once it printed `until` ("dev: ready"). */
async function startDev(extra: string[] = [], { data = dataDir, until = "dev: ready" } = {}): Promise<Dev> {
  const [port, dbPort, stripePort, clinicalPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const proc = spawn(process.execPath, [join(root, "tools/dev.mjs"), "--port", String(port), "--db-port", String(dbPort), "--stripe-port", String(stripePort), "--clinical-port", String(clinicalPort), "--data", data, ...extra], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  running.push(proc);
  let out = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (out += d));
  const deadline = Date.now() + 150_000;
  while (!out.includes(until)) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`npm run dev did not get ready:\n${out.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { proc, output: () => out, base: `http://127.0.0.1:${port}`, dbUrl: `http://127.0.0.1:${dbPort}` };
}

async function stopDev(dev: Dev) {
  if (dev.proc.exitCode !== null) return;
  dev.proc.kill("SIGTERM");
  await new Promise((r) => dev.proc.once("exit", r));
}

function token(role: string, officeIds: string[] = []) {
  const vars = readDevVars(join(root, ".dev.vars")) as Record<string, string>;
  return devToken(vars, { role, officeIds, sub: `e2e-${role}` }) as string;
}

function cli(args: string[], base: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(root, "tools/billing.mjs"), ...args, "--url", base], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, BILLING_TOKEN: token("platform_admin") } });
    let out = "";
    let err = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (err += d));
    p.on("exit", (code) => resolve({ code: code ?? 1, out, err }));
  });
}

afterAll(async () => {
  for (const p of running) if (p.exitCode === null) p.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 1500));
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(interruptedDir, { recursive: true, force: true });
});

describe("npm run dev: the demo, tokens, and the operator CLI", () => {
  it("seeds a demo on first start, prints tokens and examples, keeps it on restart, and starts over with --fresh", async () => {
    const dev = await startDev();
    const demoPath = join(dataDir, "demo.json");
    expect(existsSync(demoPath)).toBe(true);
    const demo = JSON.parse(readFileSync(demoPath, "utf8")) as { plans: Record<string, string>; offices: Record<string, { id: string; timeZone: string }>; statuses: Record<string, { office: string; paidMonthly: number }> };
    expect(Object.keys(demo.plans)).toHaveLength(2);
    expect(new Set(Object.values(demo.offices).map((o) => o.timeZone)).size).toBe(3);
    const out = dev.output();
    for (const role of ["platform_admin", "office_admin", "office_viewer", "clinical_system"]) expect(out).toMatch(new RegExp(`  ${role}\\s+eyJ`));
    expect(out.match(/^ {2}curl /gm)).toHaveLength(3);
    // The local receiver of clinical events (docs/clinical-events.md) verified and printed the demo's closes.
    expect(out).toContain("[clinical] receiver listening on");
    // (Delivered through the local queue, possibly just after "ready".)
    const closed = /^\[clinical\] #\d+ cycle\.closed off_[0-9a-f]{32} /m;
    for (let i = 0; i < 120 && !closed.test(dev.output()); i++) await new Promise((r) => setTimeout(r, 500));
    expect(dev.output()).toMatch(closed);

    // Through the API: a paid invoice, a failed one (its office past due), activity across two cycles.
    const api = apiClient(dev.base, token("platform_admin"));
    const lakeside = demo.offices.lakeside!.id;
    const spree = demo.offices.spree!.id;
    const paid = await api.get(`/v1/offices/${lakeside}/invoices?kind=monthly&status=paid`);
    expect(paid.data).toHaveLength(1);
    expect((await api.get(`/v1/offices/${spree}`)).status).toBe("past_due");
    const failed = await api.get(`/v1/offices/${spree}/invoices?kind=monthly&status=open`);
    expect(failed.data).toHaveLength(1);
    const usage = await api.get(`/v1/offices/${lakeside}/usage`);
    expect(usage.billablePatients).toBeGreaterThan(3); // carried in from the first cycle, plus new ones

    // The operator CLI against it: an office, then a run over a new office whose cycle has ended.
    const office = await cli(["office", lakeside], dev.base);
    expect(office.code, office.err).toBe(0);
    expect(office.out).toContain("Lakeside Family Practice LLC");
    expect(office.out).toMatch(/status\s+active/);
    expect(office.out).toMatch(/monthly\s+paid/);
    const plan = await api.post("/v1/plans", { code: `e2e-${Date.now()}`, name: "E2E", version: { currency: "usd", baseFee: 1000, tiers: [{ upTo: null, unitAmount: 100 }] } });
    const today = new Date().toISOString().slice(0, 10);
    const lastMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 1, 1)).toISOString().slice(0, 10);
    const fresh = await api.post("/v1/offices", { legalName: "Riverbend Clinic", billingEmail: "billing@riverbend.example", timeZone: "UTC", billingAnchorDay: 1, planId: plan.id, startsOn: lastMonth });
    // Today is a date the CLI takes: the UTC office's last cycle ended at the start of this month's 1st.
    const dry = await cli(["run", "--date", today, "--dry-run"], dev.base);
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toContain(fresh.id);
    expect(dry.out).toMatch(/invoices to finalize\s+1/);
    const run = await cli(["run", "--date", today], dev.base);
    expect(run.code, run.err).toBe(0);
    expect(run.err).toMatch(/\[#+\] 1\/1 offices closed/);
    expect(run.out).toMatch(/invoices finalized\s+1/);
    // One read (Stripe may collect it between two): exactly one closed monthly invoice, open or already paid.
    const monthly = (await api.get(`/v1/offices/${fresh.id}/invoices?kind=monthly`)) as { data: { status: string }[] };
    expect(monthly.data.filter((i) => i.status !== "draft").map((i) => i.status)).toEqual([expect.stringMatching(/^(open|paid)$/)]);
    const bad = await cli(["run"], dev.base);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("--date");
    const later = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    const future = await cli(["run", "--date", later], dev.base);
    expect(future.code).toBe(1);
    expect(future.err).toContain(`${later} has not begun in any time zone yet`);

    // Restart: the demo stays, and Stripe still knows its objects (the emulator keeps its state).
    await stopDev(dev);
    const again = await startDev();
    expect(again.output()).not.toContain("seeding the demo");
    expect(again.output()).not.toContain("does not have");
    expect(JSON.parse(readFileSync(demoPath, "utf8")).offices.lakeside.id).toBe(lakeside);
    const adminApi = apiClient(again.base, token("office_admin", [lakeside]));
    const portal = await adminApi.post(`/v1/offices/${lakeside}/billing-portal`, {});
    expect(portal.url).toMatch(/^https?:\/\//);
    const platform = apiClient(again.base, token("platform_admin"));
    const paidInvoice = (await platform.get(`/v1/offices/${lakeside}/invoices?kind=monthly&status=paid`)).data[0];
    const refund = await platform.post(`/v1/offices/${lakeside}/invoices/${paidInvoice.id}/refunds`, { amount: 100, reason: "requested_by_customer" });
    expect(refund.status).toBe("succeeded");
    const failedInvoice = (await platform.get(`/v1/offices/${spree}/invoices?kind=monthly&status=open`)).data[0];
    const voided = await platform.post(`/v1/offices/${spree}/invoices/${failedInvoice.id}/void`, {});
    expect(voided.status).toBe("void");
    await stopDev(again);
    const over = await startDev(["--fresh"]);
    expect(over.output()).toContain("seeding the demo");
    expect(JSON.parse(readFileSync(demoPath, "utf8")).offices.lakeside.id).not.toBe(lakeside);
    await stopDev(over);
  }, 600_000);

  it("an interrupted seed is resumed by the next start with the same dates, and never duplicates what it made", async () => {
    // Stop it mid-seed: after its first office, before the invoicing run.
    const first = await startDev([], { data: interruptedDir, until: "[demo] office Lakeside" });
    await stopDev(first);
    expect(existsSync(join(interruptedDir, "demo.json"))).toBe(false);
    const pending = JSON.parse(readFileSync(join(interruptedDir, "demo.pending.json"), "utf8")) as { demoId: string; now: number };

    const again = await startDev([], { data: interruptedDir });
    expect(again.output()).toContain(`resuming the demo seed begun as of ${new Date(pending.now).toISOString()}`);
    expect(existsSync(join(interruptedDir, "demo.pending.json"))).toBe(false);
    const demo = JSON.parse(readFileSync(join(interruptedDir, "demo.json"), "utf8")) as { demoId: string; offices: Record<string, { id: string }>; statuses: Record<string, { office: string; paidMonthly: number }> };
    expect(demo.demoId).toBe(pending.demoId);
    // One of each: plans, offices, patient events and monthly invoices, as if it had never stopped.
    const db = createClient({ url: again.dbUrl });
    try {
      const count = async (sql: string, args: string[] = []) => Number((await db.execute({ sql, args })).rows[0]![0]);
      expect(await count("SELECT count(*) FROM plans WHERE code LIKE ?", [`%-${demo.demoId}`])).toBe(2);
      expect(await count("SELECT count(*) FROM offices")).toBe(3);
      for (const name of ["Lakeside Family Practice LLC", "Harbor Pediatrics PC", "Praxis an der Spree GmbH"]) expect(await count("SELECT count(*) FROM offices WHERE legal_name = ?", [name])).toBe(1);
      // 42 + 18 + 7 activations and 7 + 3 + 1 deactivations in the first cycles, 3 new patients per office.
      expect(await count("SELECT count(*) FROM patient_events")).toBe(42 + 18 + 7 + 7 + 3 + 1 + 9);
      expect(await count("SELECT count(*) FROM invoices WHERE kind = 'monthly' AND status <> 'draft'")).toBe(3);
    } finally {
      db.close();
    }
    expect(demo.statuses.lakeside!.paidMonthly).toBe(1);
    expect(demo.statuses.spree!.office).toBe("past_due");
    await stopDev(again);
  }, 600_000);
});
