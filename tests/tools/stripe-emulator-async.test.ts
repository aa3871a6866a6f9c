// The emulator where real Stripe is asynchronous or refuses: refunds that settle later (Stripe's
// asynchronous refund test cards), through the real `stripe` package pointed at the emulator.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";
import { until } from "./wait";

type Emulator = Awaited<ReturnType<typeof startStripeEmulator>>;
const API_KEY = "sk_test_emulator_async";

let em: Emulator;
let stripe: Stripe;

beforeAll(async () => {
  em = await startStripeEmulator({ paymentDelayMs: 0, refundSettleDelayMs: 60_000 });
  stripe = new Stripe(API_KEY, { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
});
afterAll(async () => {
  await em?.close();
});

const events = async (contains: string) => ((await (await fetch(`${em.url}/_emulator/events?contains=${contains}`)).json()) as { data: Stripe.Event[] }).data;

/** A 4,000 invoice paid by a customer whose default payment method is the Stripe test token `token`. */
async function paidWith(token: string) {
  const customer = await stripe.customers.create({ email: "office@example.com" });
  const pm = await stripe.paymentMethods.attach(token, { customer: customer.id });
  await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: pm.id } });
  const draft = await stripe.invoices.create({ customer: customer.id, currency: "usd" });
  await stripe.invoices.addLines(draft.id, { lines: [{ amount: 4000, description: "fee" }] });
  await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: true });
  await until(async () => ((await stripe.invoices.retrieve(draft.id)).status === "paid" ? true : undefined));
  const payments = await stripe.invoicePayments.list({ invoice: draft.id });
  const paymentIntent = payments.data[0]!.payment.payment_intent as string;
  const charge = (await stripe.charges.list({ payment_intent: paymentIntent })).data[0]!;
  return { paymentIntent, charge };
}

const advance = (seconds: number) => fetch(`${em.url}/_emulator/clock/advance`, { method: "POST", body: JSON.stringify({ seconds }) });

describe("asynchronous refunds (Stripe's test cards)", () => {
  it("pm_card_pendingRefund: pending, then succeeded with refund.updated once the clock passes the settlement delay", async () => {
    const { paymentIntent, charge } = await paidWith("pm_card_pendingRefund");
    expect(charge.payment_method_details?.card?.last4).toBe("7726");
    const refund = await stripe.refunds.create({ payment_intent: paymentIntent, amount: 1500 });
    expect(refund).toMatchObject({ status: "pending", pending_reason: "processing", amount: 1500 });
    expect(refund).not.toHaveProperty("customer"); // not a field of Refund in the pinned version
    expect((await stripe.charges.retrieve(charge.id)).amount_refunded).toBe(1500); // pending counts
    expect((await events(refund.id)).map((e) => e.type)).toEqual(["refund.created"]);
    await advance(30);
    expect((await stripe.refunds.retrieve(refund.id)).status).toBe("pending");
    await advance(31);
    expect(await stripe.refunds.retrieve(refund.id)).toMatchObject({ status: "succeeded" });
    const updated = (await events(refund.id)).filter((e) => e.type === "refund.updated");
    expect(updated).toHaveLength(1);
    expect(updated[0]!.data).toMatchObject({ object: { id: refund.id, status: "succeeded" }, previous_attributes: { status: "pending" } });
    expect((await stripe.refunds.list({ charge: charge.id })).data.map((r) => r.id)).toEqual([refund.id]);
  });

  it("pm_card_refundFail: succeeded, then failed (expired_or_canceled_card) with refund.updated and refund.failed; the charge no longer counts it", async () => {
    const { paymentIntent, charge } = await paidWith("pm_card_refundFail");
    const refund = await stripe.refunds.create({ payment_intent: paymentIntent, amount: 4000 });
    expect(refund.status).toBe("succeeded");
    expect(await stripe.charges.retrieve(charge.id)).toMatchObject({ amount_refunded: 4000, refunded: true });
    await advance(61);
    expect(await stripe.refunds.retrieve(refund.id)).toMatchObject({ status: "failed", failure_reason: "expired_or_canceled_card" });
    expect(await stripe.charges.retrieve(charge.id)).toMatchObject({ amount_refunded: 0, refunded: false });
    expect((await events(refund.id)).map((e) => e.type)).toEqual(["refund.created", "refund.updated", "refund.failed"]);
    // The money is back: it can be refunded again.
    expect((await stripe.refunds.create({ charge: charge.id })).amount).toBe(4000);
  });

  it("any other card: succeeded at once, never changes; refunds list by payment intent", async () => {
    const { paymentIntent, charge } = await paidWith("pm_card_visa");
    const refund = await stripe.refunds.create({ payment_intent: paymentIntent, amount: 100 });
    expect(refund.status).toBe("succeeded");
    await advance(3600);
    expect((await stripe.refunds.retrieve(refund.id)).status).toBe("succeeded");
    expect((await events(refund.id)).map((e) => e.type)).toEqual(["refund.created"]);
    expect((await stripe.refunds.list({ payment_intent: paymentIntent })).data.map((r) => r.charge)).toEqual([charge.id]);
  });
});

describe("asynchronous refunds across a restart (--state)", () => {
  it("a refund still to settle settles after the emulator restarts from its state file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emulator-refunds-"));
    const first = await startStripeEmulator({ state: dir, paymentDelayMs: 0, refundSettleDelayMs: 60_000 });
    let refundId: string;
    try {
      const s = new Stripe(API_KEY, { host: "127.0.0.1", port: first.port, protocol: "http", maxNetworkRetries: 0 });
      const customer = await s.customers.create({ email: "office@example.com" });
      const pm = await s.paymentMethods.attach("pm_card_refundFail", { customer: customer.id });
      await s.customers.update(customer.id, { invoice_settings: { default_payment_method: pm.id } });
      const draft = await s.invoices.create({ customer: customer.id, currency: "usd" });
      await s.invoices.addLines(draft.id, { lines: [{ amount: 4000, description: "fee" }] });
      await s.invoices.finalizeInvoice(draft.id, { auto_advance: true });
      await until(async () => ((await s.invoices.retrieve(draft.id)).status === "paid" ? true : undefined));
      const paymentIntent = (await s.invoicePayments.list({ invoice: draft.id })).data[0]!.payment.payment_intent as string;
      refundId = (await s.refunds.create({ payment_intent: paymentIntent })).id;
    } finally {
      await first.close();
    }
    const second = await startStripeEmulator({ state: dir, refundSettleDelayMs: 60_000 });
    try {
      const s = new Stripe(API_KEY, { host: "127.0.0.1", port: second.port, protocol: "http", maxNetworkRetries: 0 });
      expect((await s.refunds.retrieve(refundId)).status).toBe("succeeded");
      second.advanceClock(61);
      expect(await s.refunds.retrieve(refundId)).toMatchObject({ status: "failed", failure_reason: "expired_or_canceled_card" });
    } finally {
      await second.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("billing portal sessions need a configuration", () => {
  it("are refused (400, Stripe's message) without a default configuration, even when one was made through the API; the Dashboard's default or a named one is used", async () => {
    const emu = await startStripeEmulator({});
    const s = new Stripe(API_KEY, { host: "127.0.0.1", port: emu.port, protocol: "http", maxNetworkRetries: 0 });
    try {
      const customer = await s.customers.create({ email: "office@example.com" });
      const open = () => s.billingPortal.sessions.create({ customer: customer.id, return_url: "https://app.example.com/billing" });
      const refused = await open().catch((e) => e);
      expect(refused).toMatchObject({ statusCode: 400, type: "StripeInvalidRequestError" });
      expect(refused.message).toMatch(/^No configuration provided and your test mode default configuration has not been created\./);
      expect(refused.message).toContain("https://dashboard.stripe.com/test/settings/billing/portal");
      // A configuration made through the API is not the default (only the Dashboard's is): still refused without naming it.
      const made = await s.billingPortal.configurations.create({ features: { invoice_history: { enabled: true } } });
      expect(made.is_default).toBe(false);
      expect((await open().catch((e) => e)).statusCode).toBe(400);
      const named = await s.billingPortal.sessions.create({ customer: customer.id, configuration: made.id });
      expect(named.configuration).toBe(made.id);
      expect((await s.billingPortal.sessions.create({ customer: customer.id, configuration: "bpc_nosuch" }).catch((e) => e)).statusCode).toBe(404);
      // Saving the customer portal settings in the Dashboard (the control endpoint stands for it) makes the default.
      const saved = await fetch(`${emu.url}/_emulator/billing-portal/default`, { method: "POST", body: "{}" });
      const config = (await saved.json()) as Stripe.BillingPortal.Configuration;
      expect(config).toMatchObject({ is_default: true, active: true, features: { payment_method_update: { enabled: true }, invoice_history: { enabled: true } } });
      expect((await open()).configuration).toBe(config.id);
      // Saving again keeps the one default.
      await fetch(`${emu.url}/_emulator/billing-portal/default`, { method: "POST", body: "{}" });
      expect((await s.billingPortal.configurations.list({ is_default: true })).data.map((c) => c.id)).toEqual([config.id]);
      // The scoped fault answers as an unconfigured account for matching requests only.
      emu.addFaultRule({ match: customer.id, kinds: ["portal_unconfigured"], times: 1 });
      expect((await open().catch((e) => e)).message).toMatch(/default configuration has not been created/);
      expect((await open()).configuration).toBe(config.id);
    } finally {
      await emu.close();
    }
  });
});

describe("object locks", () => {
  it("a write to an object another write holds is refused with 429 lock_timeout, not saved for its key; the stripe package surfaces it as a rate-limit error", async () => {
    const s = new Stripe(API_KEY, { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
    const customer = await s.customers.create({ email: "office+decline@example.com" });
    const draft = await s.invoices.create({ customer: customer.id, currency: "usd" });
    await s.invoices.addLines(draft.id, { lines: [{ amount: 4000, description: "fee" }] });
    // Writes to this invoice's /finalize hold its lock 400 ms (scoped: nothing else is slowed).
    const rule = await fetch(`${em.url}/_emulator/locks`, { method: "POST", body: JSON.stringify({ match: `${draft.id}/finalize`, windowMs: 400 }) });
    expect(rule.status).toBe(200);
    try {
      const first = s.invoices.finalizeInvoice(draft.id, { auto_advance: false });
      await until(async () => ((await (await fetch(`${em.url}/_emulator/locks`)).json()) as { held: string[] }).held.includes(draft.id) || undefined);
      const second = await s.invoices.voidInvoice(draft.id, {}, { idempotencyKey: `void-${draft.id}` }).catch((e) => e);
      expect(second).toMatchObject({ statusCode: 429, type: "StripeRateLimitError", code: "lock_timeout" });
      expect(second.raw).toMatchObject({ type: "invalid_request_error", doc_url: "https://stripe.com/docs/error-codes/lock-timeout" });
      expect(second.message).toMatch(/^This object cannot be accessed right now because another API request or Stripe process is currently accessing it\./);
      expect((await first).status).toBe("open");
      // Retried with the same key once the lock is free: executed (the 429 was not saved for it).
      expect((await s.invoices.voidInvoice(draft.id, {}, { idempotencyKey: `void-${draft.id}` })).status).toBe("void");
      const log = em.requests().filter((r) => r.path === `/v1/invoices/${draft.id}/void`);
      expect(log.map((r) => [r.status, r.fault, r.replayed])).toEqual([
        [429, "lock_timeout", false],
        [200, null, false],
      ]);
      // Reads are never locked.
      expect((await s.invoices.retrieve(draft.id)).status).toBe("void");
    } finally {
      await fetch(`${em.url}/_emulator/locks`, { method: "POST", body: JSON.stringify({ clear: true }) });
    }
    expect(((await (await fetch(`${em.url}/_emulator/locks`)).json()) as { rules: unknown[] }).rules).toEqual([]);
  });
});
