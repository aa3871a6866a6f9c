// The local Stripe API emulator (tools/stripe-emulator) exercised through the real `stripe` npm
// package pointed at it, plus raw fetch for protocol edges (auth, idempotency headers, faults).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request as httpRequest } from "node:http";
import { fileURLToPath } from "node:url";
import Stripe from "stripe";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseForm, startStripeEmulator, StateFileError } from "../../tools/stripe-emulator/server.mjs";
import { sdkFields } from "./sdk-fields";
import { sleep, until } from "./wait";

type Emulator = Awaited<ReturnType<typeof startStripeEmulator>>;

const cliPath = fileURLToPath(new URL("../../tools/stripe-emulator/cli.mjs", import.meta.url));
const API_KEY = "sk_test_emulator_123";
const WEBHOOK_SECRET = "whsec_emulator_test_secret";


const stripeFor = (em: Emulator, extra: Record<string, unknown> = {}) =>
  new Stripe(API_KEY, { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0, ...extra });

// Webhook receiver: records raw bodies + signature headers; answers 500 to the first delivery of
// any event whose id is in `failFirst` to exercise retries.
type Received = { raw: string; signature: string; event: any };
let received: Received[] = [];
const failFirst = new Set<string>();
let receiver: HttpServer;
let receiverUrl: string;

let em: Emulator;
let stripe: Stripe;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const event = JSON.parse(raw);
      if (failFirst.has(event.type)) {
        failFirst.delete(event.type);
        res.writeHead(500).end("nope");
        return;
      }
      received.push({ raw, signature: String(req.headers["stripe-signature"]), event });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/stripe`;
  em = await startStripeEmulator({ webhookUrl: receiverUrl, webhookSecret: WEBHOOK_SECRET });
  stripe = stripeFor(em);
});
afterAll(async () => {
  await em?.close();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
});
beforeEach(() => {
  em.reset();
  received = [];
});

const eventsOfType = (type: string) => received.filter((r) => r.event.type === type).map((r) => r.event);

/** The payment intent and charge of an invoice's (latest) payment, found as the pinned version has them. */
async function paymentOf(s: Stripe, invoiceId: string) {
  const payments = await s.invoicePayments.list({ invoice: invoiceId });
  const paymentIntent = payments.data[0]!.payment.payment_intent as string;
  const charges = await s.charges.list({ payment_intent: paymentIntent });
  return { paymentIntent, charge: charges.data[0]!.id };
}

/** Attaches a Stripe test card to the customer and makes it the default for invoices (as the Worker's setup flow does). */
async function withCard(s: Stripe, customerId: string, token = "pm_card_visa") {
  const pm = await s.paymentMethods.attach(token, { customer: customerId });
  await s.customers.update(customerId, { invoice_settings: { default_payment_method: pm.id } });
  return pm;
}

async function paidInvoice(lines: number[] = [1500, 2500]) {
  const customer = await stripe.customers.create({ name: "Office", email: "office@example.com" });
  await withCard(stripe, customer.id); // Stripe charges only a customer with a default payment method
  const draft = await stripe.invoices.create({ customer: customer.id, currency: "usd" });
  await stripe.invoices.addLines(draft.id, { lines: lines.map((amount) => ({ amount, description: `line ${amount}` })) });
  await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: true });
  const inv = await until(async () => {
    const i = await stripe.invoices.retrieve(draft.id);
    return i.status === "paid" ? i : undefined;
  });
  return { customer, invoice: inv, ...(await paymentOf(stripe, inv.id)) };
}

describe("form parsing", () => {
  it("decodes Stripe bracket notation", () => {
    expect(parseForm("a=1&metadata[office_ref]=x%20y&lines[0][amount]=100&lines[1][period][start]=5&expand[]=c&expand[]=d")).toEqual({
      a: "1",
      metadata: { office_ref: "x y" },
      lines: [{ amount: "100" }, { period: { start: "5" } }],
      expand: ["c", "d"],
    });
  });
});

describe("customers", () => {
  it("creates, retrieves and updates a customer (customer.updated webhook)", async () => {
    const c = await stripe.customers.create({ name: "Dr. Who", email: "who@example.com", metadata: { office_ref: "off_1" } });
    expect(c.id).toMatch(/^cus_/);
    expect(c).toMatchObject({ object: "customer", livemode: false, name: "Dr. Who", email: "who@example.com", metadata: { office_ref: "off_1" } });
    expect(typeof c.created).toBe("number");
    expect(c.created).toBeLessThan(Date.now() / 1000 + 5);

    expect(await stripe.customers.retrieve(c.id)).toEqual(c);

    const u = await stripe.customers.update(c.id, { name: "Dr. Who II", metadata: { plan: "gold", office_ref: "" } });
    expect(u).toMatchObject({ id: c.id, name: "Dr. Who II", email: "who@example.com", metadata: { plan: "gold" } });
    expect(u.metadata).not.toHaveProperty("office_ref");

    const ev = await until(() => eventsOfType("customer.updated")[0]);
    expect(ev.data.object).toMatchObject({ id: c.id, name: "Dr. Who II" });
  });

  it("unknown id → 404 resource_missing", async () => {
    const err = await stripe.customers.retrieve("cus_nope").catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(404);
    expect(err.code).toBe("resource_missing");
    expect(err.message).toContain("cus_nope");
  });
});

describe("invoices", () => {
  it("create → add_lines (one call) → finalize → paid asynchronously; webhooks are signed", async () => {
    const c = await stripe.customers.create({ name: "Office", email: "o@example.com" });
    await withCard(stripe, c.id); // Stripe charges only a customer with a default payment method
    const draft = await stripe.invoices.create({
      customer: c.id,
      currency: "usd",
      collection_method: "charge_automatically",
      auto_advance: false,
      description: "March 2026",
      metadata: { office_ref: "off_9" },
      custom_fields: [{ name: "Period", value: "2026-03" }],
    });
    expect(draft).toMatchObject({ object: "invoice", status: "draft", customer: c.id, amount_due: 0, metadata: { office_ref: "off_9" } });
    expect(draft.id).toMatch(/^in_/);
    expect(draft.custom_fields).toEqual([{ name: "Period", value: "2026-03" }]);

    const withLines = await stripe.invoices.addLines(draft.id, {
      lines: [
        { amount: 1200, quantity: 3, description: "3 active patients", period: { start: 1772323200, end: 1775001600 }, metadata: { kind: "patients" } },
        { amount: 500, description: "Setup fee" },
        { amount: 300, description: "Extra" },
      ],
    });
    expect(withLines.lines.data).toHaveLength(3);
    expect(withLines.amount_due).toBe(2000);
    expect(withLines.lines.data[0]).toMatchObject({
      object: "line_item",
      amount: 1200,
      quantity: 3,
      description: "3 active patients",
      period: { start: 1772323200, end: 1775001600 },
      metadata: { kind: "patients" },
    });
    // One add_lines request for all three lines.
    const addLineReqs = em.requests().filter((r: any) => r.path.endsWith("/add_lines"));
    expect(addLineReqs).toHaveLength(1);
    expect(addLineReqs[0].body).toContain("lines[2][amount]=300");
    expect(addLineReqs[0].body).toContain("lines[0][metadata][kind]=patients");

    const open = await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: true });
    expect(open.status).toBe("open");
    expect(open.number).toBeTruthy();

    const paid = await until(async () => {
      const i = await stripe.invoices.retrieve(draft.id);
      return i.status === "paid" ? i : undefined;
    });
    expect(paid.amount_paid).toBe(2000);
    expect(paid.amount_remaining).toBe(0);
    const charge = await stripe.charges.retrieve((await paymentOf(stripe, paid.id)).charge);
    expect(charge).toMatchObject({ object: "charge", amount: 2000, status: "succeeded", paid: true, customer: c.id });

    const types = await until(() => {
      const t = received.map((r) => r.event.type);
      return t.includes("invoice.payment_succeeded") ? t : undefined;
    });
    expect(types).toEqual(expect.arrayContaining(["invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]));
    for (const r of received) {
      const ev = stripe.webhooks.constructEvent(r.raw, r.signature, WEBHOOK_SECRET);
      expect(ev.object).toBe("event");
      expect(ev.id).toMatch(/^evt_/);
      expect(ev.livemode).toBe(false);
      expect(ev.pending_webhooks).toBe(1);
      expect(r.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    }
    expect(() => stripe.webhooks.constructEvent(received[0]!.raw, received[0]!.signature, "whsec_wrong")).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
    const paidEvent = eventsOfType("invoice.paid")[0];
    expect(paidEvent.data.object).toMatchObject({ id: draft.id, status: "paid", amount_paid: 2000 });
    const finalized = eventsOfType("invoice.finalized")[0];
    expect(finalized.request.id).toMatch(/^req_/);
  });

  it("zero-total invoice is paid at finalize", async () => {
    const c = await stripe.customers.create({ name: "Zero" });
    const inv = await stripe.invoices.create({ customer: c.id });
    const fin = await stripe.invoices.finalizeInvoice(inv.id);
    expect(fin.status).toBe("paid");
  });

  it("declining customer → invoice stays open, payment_failed webhook; /pay gives a card error", async () => {
    const c = await stripe.customers.create({ name: "Bad Card", email: "office+decline@example.com" });
    await withCard(stripe, c.id); // Stripe charges only a customer with a default payment method
    const inv = await stripe.invoices.create({ customer: c.id, currency: "usd" });
    await stripe.invoices.addLines(inv.id, { lines: [{ amount: 900, description: "x" }] });
    await stripe.invoices.finalizeInvoice(inv.id, { auto_advance: true });
    const failed = await until(() => eventsOfType("invoice.payment_failed")[0]);
    expect(failed.data.object).toMatchObject({ id: inv.id, status: "open", attempt_count: 1 });
    const current = await stripe.invoices.retrieve(inv.id);
    expect(current).toMatchObject({ status: "open", attempt_count: 1, amount_paid: 0, amount_remaining: 900 });

    const err = await stripe.invoices.pay(inv.id).catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(err.code).toBe("card_declined");
    expect((await stripe.invoices.retrieve(inv.id)).attempt_count).toBe(2);

    // Metadata-based decline marker, then flip the customer back and retry payment.
    const c2 = await stripe.customers.create({ name: "Meta", metadata: { emulator_outcome: "decline" } });
    await withCard(stripe, c2.id); // Stripe charges only a customer with a default payment method
    const inv2 = await stripe.invoices.create({ customer: c2.id, collection_method: "send_invoice", days_until_due: 30 } as any);
    await stripe.invoices.addLines(inv2.id, { lines: [{ amount: 100 }] } as any);
    await stripe.invoices.finalizeInvoice(inv2.id);
    expect((await stripe.invoices.pay(inv2.id).catch((e) => e)).type).toBe("StripeCardError");
    await stripe.customers.update(c2.id, { metadata: { emulator_outcome: "" } });
    const paid = await stripe.invoices.pay(inv2.id);
    expect(paid).toMatchObject({ status: "paid", amount_paid: 100 });
  });

  it("void: only open invoices", async () => {
    const c = await stripe.customers.create({ name: "V", email: "v+decline@example.com" });
    await withCard(stripe, c.id); // Stripe charges only a customer with a default payment method
    const inv = await stripe.invoices.create({ customer: c.id });
    await stripe.invoices.addLines(inv.id, { lines: [{ amount: 700 }] } as any);
    const draftVoid = await stripe.invoices.voidInvoice(inv.id).catch((e) => e);
    expect(draftVoid).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    await stripe.invoices.finalizeInvoice(inv.id);
    const voided = await stripe.invoices.voidInvoice(inv.id);
    expect(voided.status).toBe("void");
    expect(voided.status_transitions.voided_at).toBeTypeOf("number");
    await until(() => eventsOfType("invoice.voided")[0]);
    const again = await stripe.invoices.voidInvoice(inv.id).catch((e) => e);
    expect(again.statusCode).toBe(400);
  });

  it("missing required param → 400 parameter_missing with param; unknown invoice → 404", async () => {
    const err = await stripe.invoices.create({} as any).catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(400);
    expect(err.code).toBe("parameter_missing");
    expect(err.param).toBe("customer");

    const err2 = await stripe.invoices.finalizeInvoice("in_missing").catch((e) => e);
    expect(err2.statusCode).toBe(404);
    expect(err2.code).toBe("resource_missing");

    const err3 = await stripe.invoices.create({ customer: "cus_missing" }).catch((e) => e);
    expect(err3.statusCode).toBe(404);
    expect(err3.param).toBe("customer");
  });
});

describe("refunds", () => {
  it("partial, full remainder, then over-refund is rejected; charge.refunded webhooks", async () => {
    const invoice = await paidInvoice([1500, 2500]);
    const partial = await stripe.refunds.create({ charge: invoice.charge, amount: 1000 });
    expect(partial).toMatchObject({ object: "refund", amount: 1000, charge: invoice.charge, payment_intent: invoice.paymentIntent, status: "succeeded" });
    expect(partial.id).toMatch(/^re_/);
    let ch = await stripe.charges.retrieve(invoice.charge);
    expect(ch).toMatchObject({ amount_refunded: 1000, refunded: false });

    const over = await stripe.refunds.create({ charge: invoice.charge, amount: 3001 }).catch((e) => e);
    expect(over).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(over.statusCode).toBe(400);
    expect(over.param).toBe("amount");

    const rest = await stripe.refunds.create({ payment_intent: invoice.paymentIntent });
    expect(rest.amount).toBe(3000);
    ch = await stripe.charges.retrieve(invoice.charge);
    expect(ch).toMatchObject({ amount_refunded: 4000, refunded: true });

    const again = await stripe.refunds.create({ charge: invoice.charge }).catch((e) => e);
    expect(again.statusCode).toBe(400);

    const evs = await until(() => {
      const e = eventsOfType("charge.refunded");
      return e.length === 2 ? e : undefined;
    });
    expect(evs.map((e) => e.data.object.amount_refunded).sort()).toEqual([1000, 4000]);

    const missingParam = await stripe.refunds.create({} as any).catch((e) => e);
    expect(missingParam.code).toBe("parameter_missing");
  });
});

describe("billing portal", () => {
  it("creates a session with a local URL (the account's default configuration, as the Dashboard saves it)", async () => {
    const config = em.savePortalDefault();
    const c = await stripe.customers.create({ name: "P" });
    const s = await stripe.billingPortal.sessions.create({ customer: c.id, return_url: "https://app.example.com/billing" });
    expect(s).toMatchObject({ object: "billing_portal.session", customer: c.id, return_url: "https://app.example.com/billing", livemode: false });
    expect(s.id).toMatch(/^bps_/);
    expect(s.configuration).toBe(config.id);
    expect(s.url).toBe(`${em.url}/portal/${s.id}`);
    expect((await fetch(s.url)).status).toBe(200);
  });
});

describe("idempotency", () => {
  it("replays the same key + body with Idempotent-Replayed, rejects a different body", async () => {
    const a = await stripe.customers.create({ name: "Idem" }, { idempotencyKey: "key-1" });
    const b = await stripe.customers.create({ name: "Idem" }, { idempotencyKey: "key-1" });
    expect(b).toEqual(a);
    expect(a.lastResponse.headers["idempotent-replayed"]).toBeUndefined();
    expect(b.lastResponse.headers["idempotent-replayed"]).toBe("true");
    expect(b.lastResponse.idempotencyKey).toBe("key-1");
    const conflict = await stripe.customers.create({ name: "Other" }, { idempotencyKey: "key-1" }).catch((e) => e);
    expect(conflict).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(conflict.statusCode).toBe(400);
    expect(conflict.rawType).toBe("idempotency_error");
    const creates = em.requests().filter((r: any) => r.path === "/v1/customers");
    expect(creates.map((r: any) => r.idempotencyKey)).toEqual(["key-1", "key-1", "key-1"]);
    expect(creates.map((r: any) => r.replayed)).toEqual([false, true, false]);

    // Raw: replay carries the header and identical status/body; different path with same key conflicts.
    const post = (path: string, body: string, key: string, apiKey = API_KEY) =>
      fetch(`${em.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/x-www-form-urlencoded", "idempotency-key": key },
        body,
      });
    const r1 = await post("/v1/customers", "name=Raw", "raw-1");
    const r2 = await post("/v1/customers", "name=Raw", "raw-1");
    expect(r1.headers.get("idempotent-replayed")).toBeNull();
    expect(r2.headers.get("idempotent-replayed")).toBe("true");
    expect(r2.headers.get("request-id")).toMatch(/^req_/);
    expect(await r2.text()).toBe(await r1.text());
    const r3 = await post("/v1/billing_portal/sessions", "name=Raw", "raw-1");
    expect(r3.status).toBe(400);
    expect((await r3.json()).error.type).toBe("idempotency_error");
    // Scoped per API key: another key may reuse it.
    const r4 = await post("/v1/customers", "name=Raw", "raw-1", "sk_test_other_456");
    expect(r4.status).toBe(200);
    expect(r4.headers.get("idempotent-replayed")).toBeNull();
    // Errors from executed requests are replayed too (404 here).
    const e1 = await post("/v1/invoices", "customer=cus_none", "raw-err");
    const e2 = await post("/v1/invoices", "customer=cus_none", "raw-err");
    expect([e1.status, e2.status]).toEqual([404, 404]);
    expect(e2.headers.get("idempotent-replayed")).toBe("true");
  });
});

describe("auth, routing and the request log", () => {
  it("bad/missing API key → 401", async () => {
    const bad = new Stripe("sk_test_", { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
    const err = await bad.customers.create({ name: "x" }).catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(err.statusCode).toBe(401);

    const none = await fetch(`${em.url}/v1/customers`, { method: "POST", body: "name=x" });
    expect(none.status).toBe(401);
    const body = await none.json();
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.message).toContain("did not provide an API key");

    const live = await fetch(`${em.url}/v1/customers/cus_x`, { headers: { authorization: "Bearer sk_live_abcdef" } });
    expect(live.status).toBe(401);
  });

  it("unknown route → 404 in Stripe's error shape", async () => {
    const r = await fetch(`${em.url}/v1/widgets`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(r.status).toBe(404);
    const b = await r.json();
    expect(b.error.type).toBe("invalid_request_error");
    expect(b.error.message).toContain("Unrecognized request URL");
  });

  it("logs every request with raw body, headers (authorization masked), status and idempotency key", async () => {
    await stripe.customers.create({ name: "Log Me", metadata: { office_ref: "o 1" } }, { idempotencyKey: "log-key" });
    const res = await fetch(`${em.url}/_emulator/requests`);
    const { data } = await res.json();
    expect(data).toHaveLength(1);
    const [entry] = data;
    expect(entry).toMatchObject({ method: "POST", path: "/v1/customers", status: 200, idempotencyKey: "log-key" });
    expect(entry.body).toBe("name=Log%20Me&metadata[office_ref]=o%201");
    expect(entry.headers.authorization).toBe("Bearer sk_test_***");
    expect(JSON.stringify(entry)).not.toContain("emulator_123");
    expect(entry.headers["stripe-version"]).toBeTruthy();
    expect(typeof entry.timestamp).toBe("string");
  });
});

describe("rate limit and fault injection", () => {
  it("rps limit → 429 without side effects; stripe surfaces StripeRateLimitError", async () => {
    em.setRpsLimit(3);
    try {
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => stripe.customers.create({ name: `rl${i}` })));
      const ok = results.filter((r) => r.status === "fulfilled");
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(ok).toHaveLength(3);
      expect(rejected).toHaveLength(3);
      for (const r of rejected) {
        expect(r.reason).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
        expect(r.reason.statusCode).toBe(429);
      }
      expect(em.requests().filter((r: any) => r.status === 429)).toHaveLength(3);
    } finally {
      em.setRpsLimit(100);
    }
    await sleep(1000); // let the window drain
    const after = await stripe.customers.create({ name: "after" });
    expect(after.id).toMatch(/^cus_/);
  });

  it("500 fault with Stripe-Should-Retry, no side effects (control endpoint)", async () => {
    const set = await fetch(`${em.url}/_emulator/faults`, { method: "POST", body: JSON.stringify({ rate: 1, kinds: ["500"] }) });
    expect(set.status).toBe(200);
    try {
      const err = await stripe.customers.create({ name: "fault" }).catch((e) => e);
      expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
      expect(err.statusCode).toBe(500);
      expect(err.headers["stripe-should-retry"]).toBe("true");
      const raw = await fetch(`${em.url}/v1/customers/cus_x`, { headers: { authorization: `Bearer ${API_KEY}` } });
      expect(raw.status).toBe(500);
      expect(raw.headers.get("stripe-should-retry")).toBe("true");
      expect((await raw.json()).error.type).toBe("api_error");
    } finally {
      await fetch(`${em.url}/_emulator/faults`, { method: "POST", body: JSON.stringify({ rate: 0 }) });
    }
    // Both faulted requests are logged; the customer create had no side effect.
    const log = em.requests();
    expect(log.filter((r: any) => r.fault === "500")).toHaveLength(2);
  });

  it("lists emitted events, filtered by what they contain", async () => {
    const c = await stripe.customers.create({ name: "events", metadata: { office_ref: "events-office-1" } });
    await stripe.customers.update(c.id, { email: "billing@events.example" });
    const res = await fetch(`${em.url}/_emulator/events?contains=events-office-1`);
    const { data } = (await res.json()) as { data: { type: string; data: { object: { id: string } } }[] };
    expect(data.map((e) => [e.type, e.data.object.id])).toEqual([["customer.updated", c.id]]);
  });

  it("scoped fault rules fail only matching requests, a set number of times, and can be cleared", async () => {
    const add = await fetch(`${em.url}/_emulator/fault-rules`, { method: "POST", body: JSON.stringify({ match: "scoped-office-7", kinds: ["500"], times: 2 }) });
    expect(add.status).toBe(200);
    try {
      const other = await stripe.customers.create({ name: "unrelated" });
      expect(other.id).toMatch(/^cus_/);
      for (let i = 0; i < 2; i++) {
        const err = await stripe.customers.create({ name: "x", metadata: { office_ref: "scoped-office-7" } }).catch((e) => e);
        expect(err.statusCode).toBe(500);
      }
      // The rule is used up: the third matching request goes through.
      const third = await stripe.customers.create({ name: "x", metadata: { office_ref: "scoped-office-7" } });
      expect(third.id).toMatch(/^cus_/);
      // Matching on the idempotency key, until cleared.
      em.addFaultRule({ match: "key-scoped-9", kinds: ["429"] });
      const limited = await stripe.customers.create({ name: "y" }, { idempotencyKey: "key-scoped-9" }).catch((e) => e);
      expect(limited.statusCode).toBe(429);
      const cleared = await fetch(`${em.url}/_emulator/fault-rules`, { method: "POST", body: JSON.stringify({ clear: "key-scoped-9" }) });
      expect(((await cleared.json()) as { rules: unknown[] }).rules).toEqual([]);
      expect((await stripe.customers.create({ name: "y" }, { idempotencyKey: "key-scoped-9" })).id).toMatch(/^cus_/);
      const bad = await fetch(`${em.url}/_emulator/fault-rules`, { method: "POST", body: JSON.stringify({ match: "ab" }) });
      expect(bad.status).toBe(400);
    } finally {
      em.clearFaultRules();
    }
  });

  it("seeded faults are deterministic; 429 kind; timeout kind holds then drops the connection", async () => {
    const pattern = async () => {
      const e = await startStripeEmulator({ faultRate: 0.5, faultKinds: ["429"], seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) {
        statuses.push((await fetch(`${e.url}/v1/customers/cus_x`, { headers: { authorization: `Bearer ${API_KEY}` } })).status);
      }
      await e.close();
      return statuses;
    };
    const a = await pattern();
    expect(a).toEqual(await pattern());
    expect(a).toContain(429);
    expect(a).toContain(404);

    const t = await startStripeEmulator({ faultRate: 1, faultKinds: ["timeout"], timeoutMs: 200 });
    try {
      const client = stripeFor(t, { timeout: 2000 });
      const started = Date.now();
      const err = await client.customers.create({ name: "slow" }).catch((e) => e);
      const elapsed = Date.now() - started;
      expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
      expect(elapsed).toBeGreaterThanOrEqual(150);
      expect(elapsed).toBeLessThan(1900);
      // A client timeout shorter than the hold fires first.
      const client2 = stripeFor(t, { timeout: 100 });
      const err2 = await client2.customers.create({ name: "slow" }).catch((e) => e);
      expect(err2).toBeInstanceOf(Stripe.errors.StripeConnectionError);
      expect(t.requests().every((r: any) => r.fault === "timeout")).toBe(true);
    } finally {
      await t.close();
    }
  });
});

describe("webhook delivery", () => {
  it("retries non-2xx deliveries and records them", async () => {
    failFirst.add("customer.updated");
    const c = await stripe.customers.create({ name: "Retry" });
    await stripe.customers.update(c.id, { email: "retry@example.com" });
    // The first attempt fails; Stripe (sandbox) retries an hour later: the clock gets there.
    const first = await until(() => em.webhooks().find((w: any) => w.type === "customer.updated" && w.attempts.length === 1));
    await sleep(50);
    expect(em.webhooks().find((w: any) => w.event_id === first.event_id).attempts).toHaveLength(1);
    expect(first.next_attempt_at - first.attempts[0].at).toBe(3_600_000);
    em.advanceClock(3599);
    await sleep(50);
    expect(em.webhooks().find((w: any) => w.event_id === first.event_id).attempts).toHaveLength(1);
    em.advanceClock(1);
    const ev = await until(() => eventsOfType("customer.updated")[0]);
    expect(stripe.webhooks.constructEvent(received[0]!.raw, received[0]!.signature, WEBHOOK_SECRET).id).toBe(ev.id);
    const { data } = await (await fetch(`${em.url}/_emulator/webhooks`)).json();
    const rec = data.find((d: any) => d.event_id === ev.id);
    expect(rec.delivered).toBe(true);
    expect(rec.attempts.map((a: any) => a.status)).toEqual([500, 200]);
    expect(rec.url).toBe(receiverUrl);
  });
});

describe("cli", () => {
  it("prints the listening line and exits 0 on SIGTERM", async () => {
    const child = spawn(process.execPath, [cliPath, "--port", "0", "--rps", "50"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      await until(() => out.includes("\n"), 5000);
      const line = out.trim();
      expect(line).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+$/);
      const url = line.replace("listening on ", "");
      const r = await fetch(`${url}/v1/customers`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/x-www-form-urlencoded" },
        body: "name=cli",
      });
      expect(r.status).toBe(200);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});

describe("state across restarts (--state)", () => {
  const dirs: string[] = [];
  const stateDir = () => {
    const d = mkdtempSync(join(tmpdir(), "stripe-emulator-state-"));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("keeps objects, idempotency keys and events; new ids and invoice numbers do not collide; old objects work", async () => {
    const dir = stateDir();
    const em1 = await startStripeEmulator({ state: dir });
    expect(em1.stateFile).toBe(join(dir, "state.json"));
    const s1 = stripeFor(em1);
    const customer = await s1.customers.create({ name: "Office", email: "o@example.com" }, { idempotencyKey: "cust-key-1" });
    await withCard(s1, customer.id); // Stripe charges only a customer with a default payment method
    const draft = await s1.invoices.create({ customer: customer.id, currency: "usd" });
    await s1.invoices.addLines(draft.id, { lines: [{ amount: 1500 }, { amount: 2500 }] });
    await s1.invoices.finalizeInvoice(draft.id, { auto_advance: true });
    const invoicePaid = await until(async () => {
      const i = await s1.invoices.retrieve(draft.id);
      return i.status === "paid" ? i : undefined;
    });
    const paid = { ...invoicePaid, ...(await paymentOf(s1, invoicePaid.id)) };
    const refund = await s1.refunds.create({ payment_intent: paid.paymentIntent, amount: 1000 }, { idempotencyKey: "refund-key-1" });
    const open = await s1.invoices.create({ customer: customer.id, collection_method: "send_invoice", days_until_due: 30 });
    await s1.invoices.addLines(open.id, { lines: [{ amount: 700 }] });
    const openFinal = await s1.invoices.finalizeInvoice(open.id);
    expect(openFinal.status).toBe("open");
    em1.savePortalDefault();
    const session = await s1.billingPortal.sessions.create({ customer: customer.id, return_url: "http://localhost/back" });
    const events = (await (await fetch(`${em1.url}/_emulator/events`)).json()).data as { id: string; type: string }[];
    expect(events.map((e) => e.type)).toContain("invoice.paid");
    await em1.close();

    const file = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
    expect(file).toMatchObject({ format: "stripe-emulator-state", version: 1 });
    expect(JSON.stringify(file)).not.toContain(API_KEY); // idempotency scopes keep a digest of the key only
    expect(readdirSync(dir)).toEqual(["state.json"]);

    const em2 = await startStripeEmulator({ state: dir });
    try {
      const s2 = stripeFor(em2);
      expect(await s2.customers.retrieve(customer.id)).toMatchObject({ id: customer.id, name: "Office" });
      expect(await s2.invoices.retrieve(paid.id)).toMatchObject({ status: "paid", amount_paid: 4000, number: paid.number });
      expect(await s2.refunds.retrieve(refund.id)).toMatchObject({ amount: 1000, charge: paid.charge });
      expect(await s2.charges.retrieve(paid.charge)).toMatchObject({ amount_refunded: 1000, refunded: false });
      for (const e of events) expect((await s2.events.retrieve(e.id)).type).toBe(e.type);

      // A repeated idempotency key replays the first answer; a different body is still refused.
      const again = await fetch(`${em2.url}/v1/customers`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/x-www-form-urlencoded", "idempotency-key": "cust-key-1" },
        body: new URLSearchParams({ name: "Office", email: "o@example.com" }).toString(),
      });
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect((await again.json()).id).toBe(customer.id);
      const replayedRefund = await s2.refunds.create({ payment_intent: paid.paymentIntent, amount: 1000 }, { idempotencyKey: "refund-key-1" });
      expect(replayedRefund.id).toBe(refund.id);
      expect((await s2.charges.retrieve(paid.charge)).amount_refunded).toBe(1000);

      // Old objects keep working: void the open invoice, refund the rest, a portal session.
      expect((await s2.invoices.voidInvoice(open.id)).status).toBe("void");
      const rest = await s2.refunds.create({ payment_intent: paid.paymentIntent });
      expect(rest.amount).toBe(3000);
      expect(await s2.charges.retrieve(paid.charge)).toMatchObject({ amount_refunded: 4000, refunded: true });
      const session2 = await s2.billingPortal.sessions.create({ customer: customer.id, return_url: "http://localhost/back" });
      expect(session2.id).not.toBe(session.id);

      // New ids and the customer's invoice numbers continue after the old ones.
      const c2 = await s2.customers.create({ name: "Another" });
      expect([customer.id]).not.toContain(c2.id);
      const next = await s2.invoices.create({ customer: customer.id, collection_method: "send_invoice", days_until_due: 30 });
      await s2.invoices.addLines(next.id, { lines: [{ amount: 100 }] });
      const nextFinal = await s2.invoices.finalizeInvoice(next.id);
      expect([paid.id, open.id]).not.toContain(next.id);
      expect([paid.number, openFinal.number]).not.toContain(nextFinal.number);
      expect(nextFinal.number).toMatch(/-0003$/);
    } finally {
      await em2.close();
    }

    // What the second run did is saved too.
    const em3 = await startStripeEmulator({ state: dir });
    try {
      expect((await stripeFor(em3).invoices.retrieve(open.id)).status).toBe("void");
    } finally {
      await em3.close();
    }
  });

  it("saves shortly after a change, without a close; a .json path is a file; leftovers of an interrupted save are ignored", async () => {
    const dir = stateDir();
    const path = join(dir, "sub", "emu.json");
    const em1 = await startStripeEmulator({ state: path, stateSaveDelayMs: 20 });
    const c = await stripeFor(em1).customers.create({ name: "Saved" });
    await until(() => existsSync(path) && readFileSync(path, "utf8").includes(c.id));
    // A crash mid-save leaves only a temporary file beside the state file, never a torn state file.
    writeFileSync(`${path}.tmp-424242`, '{"format":"stripe-emul');
    const em2 = await startStripeEmulator({ state: path });
    try {
      expect((await stripeFor(em2).customers.retrieve(c.id)).name).toBe("Saved");
      expect(existsSync(`${path}.tmp-424242`)).toBe(false);
    } finally {
      await em2.close();
      await em1.close();
    }
  });

  it("an automatic payment pending at shutdown runs after the restart", async () => {
    const dir = stateDir();
    // The attempt is due an hour after finalize: not yet run when this one closes.
    const em1 = await startStripeEmulator({ state: dir, paymentDelayMs: 3_600_000 });
    const s1 = stripeFor(em1);
    const customer = await s1.customers.create({ name: "Pending" });
    await withCard(s1, customer.id); // Stripe charges only a customer with a default payment method
    const draft = await s1.invoices.create({ customer: customer.id });
    await s1.invoices.addLines(draft.id, { lines: [{ amount: 900 }] });
    await s1.invoices.finalizeInvoice(draft.id, { auto_advance: true });
    await em1.close();
    const saved = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
    const before = new Map(saved.invoices).get(draft.id) as { status: string; attempt_count: number };
    expect(before).toMatchObject({ status: "open", attempt_count: 0 });

    const em2 = await startStripeEmulator({ state: dir });
    try {
      const inv = await until(async () => {
        const i = await stripeFor(em2).invoices.retrieve(draft.id);
        return i.status === "paid" ? i : undefined;
      });
      expect(inv).toMatchObject({ attempt_count: 1, amount_paid: 900 });
    } finally {
      await em2.close();
    }
  });

  it("webhook deliveries still being retried at shutdown are delivered after the restart", async () => {
    const dir = stateDir();
    const em1 = await startStripeEmulator({ state: dir, webhookUrl: "http://127.0.0.1:9/webhooks/stripe", webhookSecret: WEBHOOK_SECRET });
    const c = await stripeFor(em1).customers.create({ name: "Hook" });
    await stripeFor(em1).customers.update(c.id, { name: "Hook 2" });
    await until(() => em1.webhooks()[0]?.attempts.length >= 1);
    await em1.close();
    const em2 = await startStripeEmulator({ state: dir, webhookUrl: receiverUrl, webhookSecret: WEBHOOK_SECRET });
    try {
      const ev = await until(() => eventsOfType("customer.updated")[0]);
      expect(ev.data.object).toMatchObject({ id: c.id, name: "Hook 2" });
    } finally {
      await em2.close();
    }
  });

  it("refuses to start on an unreadable state file, naming it and the fix", async () => {
    const dir = stateDir();
    const file = join(dir, "state.json");
    for (const text of ['{"format":"stripe-emulator-state","version":1,"custom', "", '{"hello":1}', '{"format":"stripe-emulator-state","version":1}']) {
      writeFileSync(file, text);
      const err = await startStripeEmulator({ state: dir }).catch((e) => e);
      expect(err).toBeInstanceOf(StateFileError);
      expect(err.message).toContain(file);
      expect(err.message).toContain("`npm run dev -- --fresh`");
      expect(err.message).not.toContain("\n");
    }
    expect(readFileSync(file, "utf8")).toBe('{"format":"stripe-emulator-state","version":1}'); // left as found

    const child = spawn(process.execPath, [cliPath, "--port", "0", "--state", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let errText = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (errText += d));
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    expect(code).toBe(1);
    expect(out).toBe("");
    expect(errText.trim().split("\n")).toHaveLength(1);
    expect(errText).toContain(`stripe-emulator: could not start: the state file ${file} is unreadable`);
    expect(errText).toContain("`npm run dev -- --fresh`");
  });

  it("cli: --state saves on SIGTERM, before the save delay", async () => {
    const dir = stateDir();
    const child = spawn(process.execPath, [cliPath, "--port", "0", "--state", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    let id = "";
    try {
      await until(() => out.includes("\n"), 5000);
      const url = out.trim().replace("listening on ", "");
      const r = await fetch(`${url}/v1/customers`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/x-www-form-urlencoded" },
        body: "name=cli",
      });
      id = (await r.json()).id;
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(readFileSync(join(dir, "state.json"), "utf8")).toContain(id);
  });
});

// ---------------------------------------------------------------------------------------------
// The pinned API version (2026-02-25.clover): shapes from the stripe package's own types.
// ---------------------------------------------------------------------------------------------

/** Fields Stripe's own example objects (its OpenAPI fixtures) have beyond the SDK's types. */
const FIXTURE_EXTRAS: Record<string, string[]> = { InvoiceLineItem: ["quantity_decimal"], Refund: ["customer", "customer_account", "payment_method"] };

const raw = (method: string, path: string, body?: string, headers: Record<string, string> = {}, target: Emulator = em) =>
  fetch(`${target.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/x-www-form-urlencoded", ...headers },
    ...(body !== undefined ? { body } : {}),
  });

describe("the pinned API version's objects and parameters", () => {
  it("objects carry exactly the SDK types' fields: every required one, nothing the version lacks", async () => {
    const types = sdkFields(["Invoice", "Charge", "InvoicePayment", "InvoiceLineItem", "Refund", "Customer", "BillingPortal.Session", "Event", "WebhookEndpoint", "BillingPortal.Configuration", "PaymentMethod"]);
    expect(types.Invoice!.required.size).toBeGreaterThan(60); // the types were read
    expect(types.Invoice!.all.has("charge")).toBe(false);
    const paid = await paidInvoice([1500, 2500]);
    const refund = await stripe.refunds.create({ payment_intent: paid.paymentIntent, amount: 100 });
    em.savePortalDefault();
    const session = await stripe.billingPortal.sessions.create({ customer: paid.customer.id, return_url: "https://app.example.com/billing" });
    const invoice = await stripe.invoices.retrieve(paid.invoice.id);
    const expanded = await stripe.invoices.retrieve(paid.invoice.id, { expand: ["payments"] });
    const charge = await stripe.charges.retrieve(paid.charge);
    const chargeWithRefunds = await stripe.charges.retrieve(paid.charge, { expand: ["refunds"] });
    const [payment] = (await stripe.invoicePayments.list({ invoice: invoice.id })).data;
    const [event] = (await (await fetch(`${em.url}/_emulator/events?contains=${invoice.id}`)).json()).data;
    const objects: [string, unknown][] = [
      ["Invoice", invoice],
      ["Invoice", expanded],
      ["Charge", charge],
      ["Charge", chargeWithRefunds],
      ["InvoicePayment", payment],
      ["InvoiceLineItem", invoice.lines.data[0]],
      ["Refund", refund],
      ["Customer", await stripe.customers.retrieve(paid.customer.id)],
      ["BillingPortal.Session", session],
      ["Event", event],
      ["WebhookEndpoint", await stripe.webhookEndpoints.create({ url: "https://app.example.com/webhooks/stripe", enabled_events: ["invoice.paid"] })],
      ["BillingPortal.Configuration", await stripe.billingPortal.configurations.create({ features: { invoice_history: { enabled: true } } })],
      ["PaymentMethod", await stripe.paymentMethods.attach("pm_card_visa", { customer: paid.customer.id })],
    ];
    for (const [name, object] of objects) {
      const { all, required } = types[name]!;
      const keys = Object.keys(object as object).filter((k) => k !== "lastResponse");
      expect(keys.filter((k) => !all.has(k) && !(FIXTURE_EXTRAS[name] ?? []).includes(k)), `${name}: fields the version does not have`).toEqual([]);
      expect([...required].filter((k) => !keys.includes(k) && k !== "deleted"), `${name}: required fields missing`).toEqual([]);
    }
    // What earlier versions had: gone.
    for (const k of ["charge", "payment_intent", "subscription"]) expect(invoice).not.toHaveProperty(k);
    expect(charge).not.toHaveProperty("invoice");
    expect(charge.payment_intent).toBe(paid.paymentIntent);
    for (const list of [invoice.lines, expanded.payments, chargeWithRefunds.refunds]) expect(list).not.toHaveProperty("total_count");
    // Includable fields only when expanded; an unknown expansion is refused.
    expect(invoice).not.toHaveProperty("payments");
    expect(expanded.payments!.data.map((p) => p.id)).toEqual([payment!.id]);
    expect(payment).toMatchObject({ object: "invoice_payment", invoice: invoice.id, status: "paid", amount_paid: 4000, is_default: true, payment: { type: "payment_intent", payment_intent: paid.paymentIntent } });
    expect(charge).not.toHaveProperty("refunds");
    expect(chargeWithRefunds.refunds!.data.map((r) => r.id)).toEqual([refund.id]);
    const badExpand = await stripe.invoices.retrieve(invoice.id, { expand: ["customer_tax_ids.x"] }).catch((e) => e);
    expect(badExpand).toMatchObject({ statusCode: 400, message: "This property cannot be expanded (customer_tax_ids.x)." });
  });

  it("an unknown parameter → 400 parameter_unknown naming it in brackets; nothing is made nor saved for the key", async () => {
    const cases: [string, string, string, string][] = [
      ["POST", "/v1/customers", "name=A&colour=blue", "colour"],
      ["POST", "/v1/customers", "name=A&address[planet]=mars", "address[planet]"],
      ["POST", "/v1/invoices", "customer=cus_x&lines[0][amount]=1", "lines"],
      ["POST", "/v1/refunds", "charge=ch_x&amount_cents=1", "amount_cents"],
      ["POST", "/v1/billing_portal/sessions", "customer=cus_x&returnUrl=x", "returnUrl"],
      ["GET", "/v1/invoices/in_x?limit=3", "", "limit"],
    ];
    for (const [method, path, body, param] of cases) {
      const res = await raw(method, path, method === "GET" ? undefined : body);
      expect(res.status, path).toBe(400);
      expect((await res.json()).error, path).toMatchObject({ type: "invalid_request_error", code: "parameter_unknown", param, message: `Received unknown parameter: ${param}` });
    }
    const c = await stripe.customers.create({ name: "Lines" });
    const inv = await stripe.invoices.create({ customer: c.id });
    const nested = await raw("POST", `/v1/invoices/${inv.id}/add_lines`, "lines[0][amount]=100&lines[1][price_data][currency]=usd&lines[1][price_data][colour]=red");
    expect((await nested.json()).error).toMatchObject({ code: "parameter_unknown", param: "lines[1][price_data][colour]" });
    expect((await stripe.invoices.retrieve(inv.id)).lines.data).toEqual([]);
    const notAList = await raw("POST", `/v1/invoices/${inv.id}/add_lines`, "lines[first][amount]=100");
    expect((await notAList.json()).error).toMatchObject({ type: "invalid_request_error", param: "lines", message: "Invalid array" });
    // A parameter Stripe has that the emulator does not emulate: refused, saying so (not that Stripe refuses it).
    const notEmulated = await raw("POST", "/v1/customers", "name=A&invoice_settings[footer]=x");
    expect((await notEmulated.json()).error).toMatchObject({ code: "emulator_unsupported_parameter", param: "invoice_settings" });
    // Validation failed before the endpoint ran: no result is saved for the key; the corrected request runs.
    const first = await raw("POST", "/v1/customers", "name=K&colour=blue", { "idempotency-key": "unknown-param-key" });
    const again = await raw("POST", "/v1/customers", "name=K&colour=blue", { "idempotency-key": "unknown-param-key" });
    expect([first.status, again.status, again.headers.get("idempotent-replayed")]).toEqual([400, 400, null]);
    expect((await raw("POST", "/v1/customers", "name=K", { "idempotency-key": "unknown-param-key" })).status).toBe(200);
    expect((await stripe.customers.create({ name: "SDK" }).then((x) => x.object))).toBe("customer");
  });

  it("add_lines: amount or price_data (strict), line amount = quantity × unit amount, the line's pricing", async () => {
    const c = await stripe.customers.create({ name: "Priced" });
    const inv = await stripe.invoices.create({ customer: c.id, currency: "usd" });
    const refused = async (line: Record<string, unknown>) => {
      const err = await stripe.invoices.addLines(inv.id, { lines: [line] } as any).catch((e) => e);
      expect(err, JSON.stringify(line)).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      return { code: err.code, param: err.param, message: err.message };
    };
    const product_data = { name: "Active patients" };
    expect(await refused({ amount: 100, price_data: { currency: "usd", product_data, unit_amount: 100 } })).toMatchObject({ param: "lines[0][amount]", message: "You may only specify one of these parameters: amount, price_data." });
    expect(await refused({ description: "nothing priced" })).toMatchObject({ code: "parameter_missing", param: "lines[0][amount]" });
    expect(await refused({ price_data: { product_data, unit_amount: 100 } })).toMatchObject({ code: "parameter_missing", param: "lines[0][price_data][currency]" });
    expect(await refused({ price_data: { currency: "eur", product_data, unit_amount: 100 } })).toMatchObject({ param: "lines[0][price_data][currency]" });
    expect(await refused({ price_data: { currency: "usd", unit_amount: 100 } })).toMatchObject({ code: "parameter_missing", param: "lines[0][price_data][product]" });
    expect(await refused({ price_data: { currency: "usd", product: "prod_nothere", product_data, unit_amount: 100 } })).toMatchObject({ param: "lines[0][price_data][product]" });
    expect(await refused({ price_data: { currency: "usd", product: "prod_nothere", unit_amount: 100 } })).toMatchObject({ code: "resource_missing", param: "lines[0][price_data][product]" });
    expect(await refused({ price_data: { currency: "usd", product_data: { description: "no name" }, unit_amount: 100 } })).toMatchObject({ code: "parameter_missing", param: "lines[0][price_data][product_data][name]" });
    expect(await refused({ price_data: { currency: "usd", product_data } })).toMatchObject({ code: "parameter_missing", param: "lines[0][price_data][unit_amount]" });
    expect(await refused({ price_data: { currency: "usd", product_data, unit_amount: 100, unit_amount_decimal: "100" } })).toMatchObject({ param: "lines[0][price_data][unit_amount]" });
    expect(await refused({ price_data: { currency: "usd", product_data, unit_amount_decimal: "1.2.3" } })).toMatchObject({ param: "lines[0][price_data][unit_amount_decimal]" });
    expect((await stripe.invoices.retrieve(inv.id)).lines.data).toEqual([]); // all or nothing

    const withLines = await stripe.invoices.addLines(inv.id, {
      lines: [
        { price_data: { currency: "usd", product_data, unit_amount: 1250 }, quantity: 7, description: "7 active patients" },
        { price_data: { currency: "USD", product_data: { name: "Fee" }, unit_amount_decimal: "33.5" }, quantity: 3 },
        { amount: 500, description: "Setup fee" },
      ],
    });
    const [patients, fee, setup] = withLines.lines.data;
    expect(patients).toMatchObject({ amount: 8750, quantity: 7, subtotal: 8750, pricing: { type: "price_details", unit_amount_decimal: "1250" } });
    expect(patients!.pricing!.price_details).toEqual({ price: expect.stringMatching(/^price_/), product: expect.stringMatching(/^prod_/) });
    expect(fee).toMatchObject({ amount: 101, quantity: 3, pricing: { unit_amount_decimal: "33.5" } });
    expect(setup).toMatchObject({ amount: 500, quantity: 1, pricing: { type: "price_details", unit_amount_decimal: "500" } });
    expect(setup!.pricing).not.toHaveProperty("price_details");
    expect(withLines.amount_due).toBe(8750 + 101 + 500);
    // The product made by product_data can be named by a later line.
    const again = await stripe.invoices.addLines(inv.id, { lines: [{ price_data: { currency: "usd", product: patients!.pricing!.price_details!.product, unit_amount: 10 }, quantity: 2 }] });
    expect(again.lines.data[3]).toMatchObject({ amount: 20, pricing: { price_details: { product: patients!.pricing!.price_details!.product } } });
  });

  it("lists: an invoice embeds its first ten lines (has_more), the rest by page; invoice payments by invoice or payment intent", async () => {
    const c = await stripe.customers.create({ name: "Many", email: "many+decline@example.com" });
    await withCard(stripe, c.id); // Stripe charges only a customer with a default payment method
    const inv = await stripe.invoices.create({ customer: c.id });
    const withLines = await stripe.invoices.addLines(inv.id, { lines: Array.from({ length: 12 }, (_, i) => ({ amount: 100 + i })) });
    expect(withLines.lines.data).toHaveLength(10);
    expect(withLines.lines.has_more).toBe(true);
    expect(withLines.amount_due).toBe(Array.from({ length: 12 }, (_, i) => 100 + i).reduce((a, b) => a + b));
    const page1 = await stripe.invoices.listLineItems(inv.id, { limit: 5 });
    const page2 = await stripe.invoices.listLineItems(inv.id, { limit: 10, starting_after: page1.data[4]!.id });
    expect([...page1.data, ...page2.data].map((l) => l.amount)).toEqual(Array.from({ length: 12 }, (_, i) => 100 + i));
    expect([page1.has_more, page2.has_more]).toEqual([true, false]);
    // A declined attempt, then a paid one: two invoice payments, the latest first and the default.
    await stripe.invoices.finalizeInvoice(inv.id);
    expect((await stripe.invoices.pay(inv.id).catch((e) => e)).code).toBe("card_declined");
    await stripe.customers.update(c.id, { email: "many@example.com" });
    await stripe.invoices.pay(inv.id);
    const payments = await stripe.invoicePayments.list({ invoice: inv.id });
    expect(payments.data.map((p) => [p.status, p.is_default])).toEqual([["paid", true], ["open", false]]);
    const byIntent = await stripe.invoicePayments.list({ payment: { type: "payment_intent", payment_intent: payments.data[1]!.payment.payment_intent as string } });
    expect(byIntent.data.map((p) => p.id)).toEqual([payments.data[1]!.id]);
    expect((await stripe.invoicePayments.retrieve(payments.data[0]!.id)).invoice).toBe(inv.id);
    const charges = await stripe.charges.list({ payment_intent: payments.data[1]!.payment.payment_intent as string });
    expect(charges.data.map((ch) => ch.status)).toEqual(["failed"]);
  });
});

describe("the emulator's clock", () => {
  let timed: Emulator;
  let s: Stripe;
  beforeAll(async () => {
    timed = await startStripeEmulator({ paymentDelayMs: 3_600_000 });
    s = stripeFor(timed);
  });
  afterAll(async () => {
    await timed?.close();
  });
  const advance = async (seconds: number) => {
    const res = await fetch(`${timed.url}/_emulator/clock/advance`, { method: "POST", body: JSON.stringify({ seconds }) });
    expect(res.status).toBe(200);
    return (await res.json()) as { now: number; offset_ms: number };
  };

  it("the automatic payment attempt comes paymentDelayMs after finalize (auto_advance only), when the clock gets there", async () => {
    const c = await s.customers.create({ name: "Timed" });
    await withCard(s, c.id); // Stripe charges only a customer with a default payment method
    const inv = await s.invoices.create({ customer: c.id });
    await s.invoices.addLines(inv.id, { lines: [{ amount: 900 }] });
    const open = await s.invoices.finalizeInvoice(inv.id, { auto_advance: true });
    expect(open.next_payment_attempt).toBe(open.status_transitions.finalized_at! + 3600);
    const manual = await s.invoices.create({ customer: c.id });
    await s.invoices.addLines(manual.id, { lines: [{ amount: 300 }] });
    await s.invoices.finalizeInvoice(manual.id); // auto_advance false: Stripe collects nothing by itself
    await advance(3599);
    expect((await s.invoices.retrieve(inv.id)).status).toBe("open");
    const at = await advance(1);
    const paid = await s.invoices.retrieve(inv.id);
    expect(paid).toMatchObject({ status: "paid", attempt_count: 1, amount_paid: 900 });
    expect(paid.status_transitions.paid_at).toBeGreaterThanOrEqual(at.now - 1);
    await advance(7 * 86400);
    expect(await s.invoices.retrieve(manual.id)).toMatchObject({ status: "open", attempt_count: 0 });
    // Timestamps follow the clock.
    const later = await s.customers.create({ name: "Later" });
    await withCard(s, later.id); // Stripe charges only a customer with a default payment method
    expect(later.created).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 7 * 86400 + 3600 - 1);
    const bad = await fetch(`${timed.url}/_emulator/clock/advance`, { method: "POST", body: JSON.stringify({ seconds: -5 }) });
    expect(bad.status).toBe(400);
  });

  it("idempotency keys are pruned 24 hours after their first use: the same key then makes a new object", async () => {
    const first = await s.customers.create({ name: "Keyed" }, { idempotencyKey: "day-key" });
    await advance(86399);
    const replay = await s.customers.create({ name: "Keyed" }, { idempotencyKey: "day-key" });
    expect(replay.id).toBe(first.id);
    expect(replay.lastResponse.headers["idempotent-replayed"]).toBe("true");
    await advance(1);
    const fresh = await s.customers.create({ name: "Keyed" }, { idempotencyKey: "day-key" });
    expect(fresh.id).not.toBe(first.id);
    expect(fresh.lastResponse.headers["idempotent-replayed"]).toBeUndefined();
  });
});

describe("idempotency: requests in flight and saved 500s", () => {
  it("a request with the key of one still in flight → 409 idempotency_key_in_use (nothing saved); the first completes", async () => {
    const body = "name=InFlight&email=inflight%40example.com";
    const slow = new Promise<{ status: number; replayed: unknown; text: string }>((resolve, reject) => {
      const req = httpRequest(`${em.url}/v1/customers`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/x-www-form-urlencoded", "content-length": String(body.length), "idempotency-key": "in-flight-key" },
      });
      req.on("response", (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode!, replayed: res.headers["idempotent-replayed"], text }));
      });
      req.on("error", reject);
      req.write(body.slice(0, 10)); // the first request is under way: its body is not all there yet
      (globalThis as any).__finishSlow = () => req.end(body.slice(10));
    });
    await until(() => em.idempotencyKeysInFlight() === 1); // the key is claimed as the request arrives
    const second = await raw("POST", "/v1/customers", body, { "idempotency-key": "in-flight-key" });
    expect(second.status).toBe(409);
    expect((await second.json()).error).toMatchObject({ type: "invalid_request_error", code: "idempotency_key_in_use" });
    (globalThis as any).__finishSlow();
    const first = await slow;
    expect(first.status).toBe(200);
    const third = await raw("POST", "/v1/customers", body, { "idempotency-key": "in-flight-key" });
    expect(third.headers.get("idempotent-replayed")).toBe("true");
    expect((await third.json()).id).toBe(JSON.parse(first.text).id);
    expect(em.idempotencyKeysInFlight()).toBe(0);
    expect(em.requests().filter((r: any) => r.path === "/v1/customers").map((r: any) => r.status)).toEqual([409, 200, 200]);
  });

  it("a 500 from an endpoint that began executing is saved for its key and replayed (Stripe's docs); one before it is not", async () => {
    em.addFaultRule({ match: "SavedFiveHundred", kinds: ["500_saved"], times: 1 });
    const a = await raw("POST", "/v1/customers", "name=SavedFiveHundred", { "idempotency-key": "five-hundred-key" });
    const b = await raw("POST", "/v1/customers", "name=SavedFiveHundred", { "idempotency-key": "five-hundred-key" });
    expect([a.status, b.status]).toEqual([500, 500]);
    expect(b.headers.get("idempotent-replayed")).toBe("true");
    expect(await b.text()).toBe(await a.text());
    // A new key runs the request for real.
    expect((await raw("POST", "/v1/customers", "name=SavedFiveHundred", { "idempotency-key": "five-hundred-key-2" })).status).toBe(200);
    // An injected 500 before execution (the network's, the load balancer's) saves nothing.
    em.addFaultRule({ match: "EarlyFiveHundred", kinds: ["500"], times: 1 });
    const c = await raw("POST", "/v1/customers", "name=EarlyFiveHundred", { "idempotency-key": "early-500-key" });
    const d = await raw("POST", "/v1/customers", "name=EarlyFiveHundred", { "idempotency-key": "early-500-key" });
    expect([c.status, d.status, d.headers.get("idempotent-replayed")]).toEqual([500, 200, null]);
  });
});
