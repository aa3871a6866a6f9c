// npm run stripe:setup and npm run stripe:smoke against an emulator started here (so CI runs
// them), and the emulator endpoints they use (webhook endpoints, billing-portal configurations,
// payment methods), through the real `stripe` package.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handledEventTypes } from "../../src/stripe/webhooks";
import { STRIPE_API_VERSION } from "../../src/stripe/client";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const KEY = "sk_test_setup_smoke_123";
let em: Awaited<ReturnType<typeof startStripeEmulator>>;
let stripe: Stripe;

function run(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, STRIPE_API_BASE: em.url, STRIPE_SECRET_KEY: KEY, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
const statusOf = async (p: Promise<unknown>) => p.then(() => 200, (e: { statusCode?: number; code?: string; param?: string }) => ({ status: e.statusCode, code: e.code, param: e.param }));

beforeAll(async () => {
  em = await startStripeEmulator({ port: 0 });
  stripe = new Stripe(KEY, { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
});
afterAll(async () => {
  await em?.close();
});

describe("stripe:smoke", () => {
  it("one office end to end passes every step against the emulator", async () => {
    // The account's customer portal settings saved (Stripe's Dashboard): portal sessions need them.
    em.savePortalDefault();
    const { code, stdout } = await run("tools/stripe-smoke.mjs", []);
    expect(code, stdout).toBe(0);
    for (const s of ["customer", "setup link (Checkout in setup mode)", "test card attached", "default payment method", "invoice (draft, add_lines, finalize)", "payment", "partial refund", "void of another invoice", "billing portal session"]) {
      expect(stdout).toMatch(new RegExp(`\\d\\. ${s.replace(/[()]/g, "\\$&")}: ok`));
    }
    expect(stdout).toContain("all steps passed");
    // It used the calls the Worker uses, and sent only fixed test values.
    const log = em.requests().filter((r) => r.method === "POST").map((r) => ({ path: r.path, body: decodeURIComponent(r.body.replace(/\+/g, " ")) }));
    const lines = log.find((r) => /^\/v1\/invoices\/in_\w+\/add_lines$/.test(r.path))!;
    expect(lines.body).toContain("lines[0][price_data][product_data][name]=Active patients");
    expect(lines.body).toContain("lines[0][quantity]=3");
    expect(lines.body).toContain("lines[1][amount]=5000");
    expect(log.some((r) => /\/finalize$/.test(r.path))).toBe(true);
    expect(log.find((r) => r.path === "/v1/customers")!.body).toContain("name=Smoke Test Office");
  });

  it("stops at the first failing step with exit 1; a live key is refused before anything is sent (exit 2)", async () => {
    // sk_test_x is not a well-formed key: the emulator answers 401, as Stripe does, at the first step.
    const before = em.requests().length;
    const bad = await run("tools/stripe-smoke.mjs", [], { STRIPE_SECRET_KEY: "sk_test_x" });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/1\. customer: FAILED \(401/);
    expect(bad.stdout).not.toContain("2. ");
    // A live-mode prefix on a made-up body (assembled here so no key-shaped literal sits in git).
    const live = await run("tools/stripe-smoke.mjs", [], { STRIPE_SECRET_KEY: ["rk", "live", "notarealkey"].join("_") });
    expect(live.code).toBe(2);
    expect(live.stderr).toContain("is a live key");
    expect(em.requests().slice(before).every((r) => !String(r.headers.authorization).includes("live"))).toBe(true);
  });
});

describe("stripe:setup", () => {
  // A fresh account: no endpoint, no portal configuration (the smoke test saved a default one).
  beforeAll(() => em.reset());
  const url = "http://127.0.0.1:8787/webhooks/stripe";
  it("creates the endpoint (pinned version, exactly the handled events, secret printed once) and the portal configuration; a second run changes nothing", async () => {
    const first = await run("tools/stripe-setup.mjs", ["--webhook-url", url]);
    expect(first.code, first.stdout).toBe(0);
    expect(first.stdout).toMatch(/webhook endpoint we_\w+: created/);
    expect(first.stdout).toMatch(/billing portal configuration bpc_\w+: created/);
    expect(first.stdout).toMatch(/permission customers: read ok/);
    for (const p of ["checkout sessions", "setup intents", "payment methods"]) expect(first.stdout).toContain(`permission ${p}: read ok`);
    const secret = /^STRIPE_WEBHOOK_SECRET=(whsec_\S+)$/m.exec(first.stdout)?.[1];
    expect(secret).toBeDefined();
    const endpoints = await stripe.webhookEndpoints.list();
    expect(endpoints.data).toHaveLength(1);
    const endpoint = endpoints.data[0]!;
    expect(endpoint).toMatchObject({ url, api_version: STRIPE_API_VERSION, status: "enabled" });
    expect([...endpoint.enabled_events].sort()).toEqual([...handledEventTypes].sort());
    expect(endpoint.secret).toBeUndefined();
    const [config] = (await stripe.billingPortal.configurations.list()).data;
    expect(config!.features).toMatchObject({ payment_method_update: { enabled: true }, invoice_history: { enabled: true } });

    const second = await run("tools/stripe-setup.mjs", ["--webhook-url", url]);
    expect(second.code, second.stdout).toBe(0);
    expect(second.stdout).toMatch(/webhook endpoint we_\w+: unchanged/);
    expect(second.stdout).toMatch(/billing portal configuration bpc_\w+: unchanged/);
    expect(second.stdout).not.toContain("whsec_");
    expect((await stripe.webhookEndpoints.list()).data).toHaveLength(1);

    // Events drifted (e.g. edited in the dashboard): updated back; a version it cannot change is refused.
    await stripe.webhookEndpoints.update(endpoint.id, { enabled_events: ["invoice.paid"] });
    const third = await run("tools/stripe-setup.mjs", ["--webhook-url", url]);
    expect(third.stdout).toMatch(/webhook endpoint we_\w+: updated/);
    expect([...(await stripe.webhookEndpoints.retrieve(endpoint.id)).enabled_events].sort()).toEqual([...handledEventTypes].sort());
    await stripe.webhookEndpoints.create({ url: "https://other.example/webhooks/stripe", enabled_events: ["invoice.paid"] });
    const unpinned = await run("tools/stripe-setup.mjs", ["--webhook-url", "https://other.example/webhooks/stripe"]);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stdout).toMatch(/api_version is the account default, not 2026-02-25\.clover; Stripe cannot change it in place/);
  });

  it("names each resource the checked key cannot read, and exits 1 (the Worker's key given apart)", async () => {
    // The emulator has no restricted keys: a scoped fault makes the charges probe fail the way a refused one does.
    const rule = await fetch(`${em.url}/_emulator/fault-rules`, { method: "POST", body: JSON.stringify({ match: "ch_stripesetupprobe", kinds: ["500"] }) });
    expect(rule.status).toBe(200);
    const before = em.requests().length;
    try {
      const r = await run("tools/stripe-setup.mjs", ["--webhook-url", "http://127.0.0.1:8787/webhooks/stripe"], { STRIPE_WORKER_KEY: "rk_test_worker_key_123" });
      expect(r.code).toBe(1);
      expect(r.stdout).toContain("checking the read permissions of STRIPE_WORKER_KEY (rk_test_…)");
      expect(r.stdout).toMatch(/permission charges: FAILED \(500/);
      expect(r.stdout).toMatch(/permission customers: read ok/);
      expect(r.stdout).toContain("the key cannot read: charges");
      // The probes used the Worker's key; the setup calls the setup key.
      const log = em.requests().slice(before);
      const probes = log.filter((q) => q.path.includes("stripesetupprobe"));
      expect(new Set(probes.map((q) => q.path)).size).toBe(9);
      expect(probes.every((q) => q.headers.authorization === "Bearer rk_test_***")).toBe(true);
      expect(log.filter((q) => q.path.startsWith("/v1/webhook_endpoints")).every((q) => q.headers.authorization === "Bearer sk_test_***")).toBe(true);
    } finally {
      await fetch(`${em.url}/_emulator/fault-rules`, { method: "POST", body: JSON.stringify({ clear: true }) });
    }
  });

  it("without a webhook URL or key: the usage and exit 2", async () => {
    const r = await run("tools/stripe-setup.mjs", []);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--webhook-url/);
  });
});

describe("the emulator's endpoints for them", () => {
  it("webhook endpoints: required and unknown parameters, api_version only at creation, secret only in the create answer, delete", async () => {
    expect(await statusOf(stripe.webhookEndpoints.create({ url: "https://x.example/h" } as Stripe.WebhookEndpointCreateParams))).toMatchObject({ status: 400, code: "parameter_missing", param: "enabled_events" });
    expect(await statusOf(stripe.webhookEndpoints.create({ url: "https://x.example/h", enabled_events: ["invoice.paid"], connect: true }))).toMatchObject({ status: 400, code: "emulator_unsupported_parameter", param: "connect" });
    // Event types are the version's (the SDK's EnabledEvent): a made-up one is refused.
    expect(await statusOf(stripe.webhookEndpoints.create({ url: "https://x.example/h", enabled_events: ["invoice.paid", "invoice.teleported" as Stripe.WebhookEndpointCreateParams.EnabledEvent] }))).toMatchObject({ status: 400, param: "enabled_events[1]" });
    expect((await stripe.webhookEndpoints.create({ url: "https://x.example/all", enabled_events: ["*"] })).enabled_events).toEqual(["*"]);
    expect(await statusOf(stripe.webhookEndpoints.create({ url: "https://x.example/h", enabled_events: ["invoice.paid"], api_version: "2024-06-20" as Stripe.WebhookEndpointCreateParams.ApiVersion }))).toMatchObject({ status: 400, param: "api_version" });
    const e = await stripe.webhookEndpoints.create({ url: "https://x.example/h", enabled_events: ["invoice.paid"], api_version: STRIPE_API_VERSION as Stripe.WebhookEndpointCreateParams.ApiVersion });
    expect(e.secret).toMatch(/^whsec_/);
    expect(await statusOf(stripe.webhookEndpoints.update(e.id, { api_version: STRIPE_API_VERSION } as Stripe.WebhookEndpointUpdateParams))).toMatchObject({ status: 400, code: "parameter_unknown", param: "api_version" });
    expect(await stripe.webhookEndpoints.update(e.id, { disabled: true })).toMatchObject({ status: "disabled" });
    expect(await stripe.webhookEndpoints.del(e.id)).toEqual({ id: e.id, object: "webhook_endpoint", deleted: true });
    expect(await statusOf(stripe.webhookEndpoints.retrieve(e.id))).toMatchObject({ status: 404, code: "resource_missing" });
  });

  it("portal configurations: features required, subscription features not emulated; payment methods: test tokens attach, default payment method must be attached", async () => {
    expect(await statusOf(stripe.billingPortal.configurations.create({} as Stripe.BillingPortal.ConfigurationCreateParams))).toMatchObject({ status: 400, code: "parameter_missing", param: "features" });
    expect(await statusOf(stripe.billingPortal.configurations.create({ features: { subscription_cancel: { enabled: true } } }))).toMatchObject({ status: 400, code: "emulator_unsupported_parameter" });
    const c = await stripe.billingPortal.configurations.create({ features: { invoice_history: { enabled: true } } });
    expect(c).toMatchObject({ object: "billing_portal.configuration", active: true, is_default: false, features: { invoice_history: { enabled: true }, payment_method_update: { enabled: false } } });
    expect(await stripe.billingPortal.configurations.update(c.id, { active: false })).toMatchObject({ active: false });
    expect((await stripe.billingPortal.configurations.list({ active: false })).data.map((x) => x.id)).toContain(c.id);

    const cus = await stripe.customers.create({ name: "Test Office" });
    const other = await stripe.customers.create({ name: "Other Test Office" });
    expect(await statusOf(stripe.paymentMethods.attach("pm_card_unknown", { customer: cus.id }))).toMatchObject({ status: 404 });
    const pm = await stripe.paymentMethods.attach("pm_card_visa", { customer: cus.id });
    expect(pm).toMatchObject({ object: "payment_method", type: "card", customer: cus.id, card: { brand: "visa", last4: "4242" } });
    expect(pm.id).not.toBe("pm_card_visa");
    expect(await statusOf(stripe.paymentMethods.attach(pm.id, { customer: other.id }))).toMatchObject({ status: 400 });
    expect(await statusOf(stripe.customers.update(other.id, { invoice_settings: { default_payment_method: pm.id } }))).toMatchObject({ status: 400, param: "invoice_settings[default_payment_method]" });
    expect((await stripe.customers.update(cus.id, { invoice_settings: { default_payment_method: pm.id } })).invoice_settings.default_payment_method).toBe(pm.id);
  });

  it("webhook endpoints (with their secret), portal configurations and payment methods survive a restart with --state", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stripe-setup-state-"));
    try {
      const a = await startStripeEmulator({ port: 0, state: dir });
      const sa = new Stripe(KEY, { host: "127.0.0.1", port: a.port, protocol: "http", maxNetworkRetries: 0 });
      const e = await sa.webhookEndpoints.create({ url: "https://x.example/state", enabled_events: ["invoice.paid"] });
      const c = await sa.billingPortal.configurations.create({ features: { invoice_history: { enabled: true } } });
      const cus = await sa.customers.create({ name: "Test Office" });
      const pm = await sa.paymentMethods.attach("pm_card_visa", { customer: cus.id });
      await a.close();
      const b = await startStripeEmulator({ port: 0, state: dir });
      try {
        const sb = new Stripe(KEY, { host: "127.0.0.1", port: b.port, protocol: "http", maxNetworkRetries: 0 });
        expect((await sb.webhookEndpoints.retrieve(e.id)).url).toBe("https://x.example/state");
        expect((await sb.billingPortal.configurations.retrieve(c.id)).features.invoice_history.enabled).toBe(true);
        expect((await sb.paymentMethods.retrieve(pm.id)).customer).toBe(cus.id);
      } finally {
        await b.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
