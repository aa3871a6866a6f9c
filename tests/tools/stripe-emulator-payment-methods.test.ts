// The emulator's payment methods as Stripe has them in the pinned version: automatic collection
// without a default payment method fails (no retry); a declined one is retried on the clock; a
// Checkout Session in setup mode, completed as a customer on the hosted page does, attaches the
// card but does not make it the customer's default.
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";
import { sdkFields } from "./sdk-fields";

const DAY = 86_400;
let em: Awaited<ReturnType<typeof startStripeEmulator>>;
let stripe: Stripe;

beforeAll(async () => {
  // The attempt comes an hour after finalize; declines are retried after 1, then 2 days; then marked uncollectible.
  em = await startStripeEmulator({ paymentDelayMs: 3_600_000, retryDelaysS: [DAY, 2 * DAY], afterRetries: "mark_uncollectible" });
  const url = new URL(em.url);
  stripe = new Stripe("sk_test_payment_methods_1", { host: url.hostname, port: Number(url.port), protocol: "http", maxNetworkRetries: 0 });
});
afterAll(async () => {
  await em?.close();
});

const advance = (seconds: number) => em.advanceClock(seconds);
const eventsOf = async (text: string) => ((await (await fetch(`${em.url}/_emulator/events?contains=${text}`)).json()) as { data: { type: string; data: { object: Record<string, unknown> } }[] }).data;
const complete = (sessionId: string, payment_method?: string) => fetch(`${em.url}/_emulator/checkout/sessions/${sessionId}/complete`, { method: "POST", body: JSON.stringify(payment_method ? { payment_method } : {}) });

async function finalized(customer: string, amount = 4_000) {
  const draft = await stripe.invoices.create({ customer, currency: "usd", auto_advance: false });
  await stripe.invoices.addLines(draft.id, { lines: [{ amount, description: "Setup fee" }] });
  return stripe.invoices.finalizeInvoice(draft.id, { auto_advance: true });
}

describe("automatic collection and payment methods", () => {
  it("without a default payment method the attempt fails: invoice.payment_failed, payment intent requires_payment_method, no retry", async () => {
    const c = await stripe.customers.create({ name: "No card" });
    const inv = await finalized(c.id);
    advance(3600);
    const after = await stripe.invoices.retrieve(inv.id, { expand: ["payments"] });
    expect(after).toMatchObject({ status: "open", attempt_count: 1, attempted: true, next_payment_attempt: null, amount_paid: 0 });
    const pi = after.payments!.data[0]!.payment.payment_intent as string;
    const intent = await stripe.paymentIntents.retrieve(pi);
    expect(intent).toMatchObject({ status: "requires_payment_method", latest_charge: null, amount_received: 0 });
    expect(intent.last_payment_error).not.toBeNull();
    expect((await stripe.charges.list({ customer: c.id })).data).toEqual([]);
    expect((await eventsOf(inv.id)).map((e) => e.type)).toEqual(["invoice.finalized", "invoice.payment_failed"]);
    advance(30 * DAY);
    expect((await stripe.invoices.retrieve(inv.id)).attempt_count).toBe(1);
    // Paying it by API: Stripe's refusal, nothing charged.
    const err = await stripe.invoices.pay(inv.id).catch((e) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
  });

  it("an invoice's own default_payment_method, else the customer's invoice_settings default, is charged", async () => {
    const c = await stripe.customers.create({ name: "Card" });
    const pm = await stripe.paymentMethods.attach("pm_card_mastercard", { customer: c.id });
    const draft = await stripe.invoices.create({ customer: c.id, currency: "usd", auto_advance: false, default_payment_method: pm.id });
    await stripe.invoices.addLines(draft.id, { lines: [{ amount: 2_500 }] });
    await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: true });
    advance(3600);
    expect((await stripe.invoices.retrieve(draft.id)).status).toBe("paid");
    const [charge] = (await stripe.charges.list({ customer: c.id })).data;
    expect(charge).toMatchObject({ payment_method: pm.id, payment_method_details: { card: { brand: "mastercard", last4: "4444" } } });
  });

  it("a declined card is retried on the clock's schedule, then the invoice is marked uncollectible (as configured)", async () => {
    const c = await stripe.customers.create({ name: "Declines" });
    const pm = await stripe.paymentMethods.attach("pm_card_chargeCustomerFail", { customer: c.id });
    await stripe.customers.update(c.id, { invoice_settings: { default_payment_method: pm.id } });
    const inv = await finalized(c.id);
    advance(3600);
    let now = em.now();
    let state = await stripe.invoices.retrieve(inv.id);
    expect(state).toMatchObject({ status: "open", attempt_count: 1 });
    expect(state.next_payment_attempt! - now).toBe(DAY);
    advance(DAY);
    now = em.now();
    state = await stripe.invoices.retrieve(inv.id);
    expect(state).toMatchObject({ status: "open", attempt_count: 2 });
    expect(state.next_payment_attempt! - now).toBe(2 * DAY);
    advance(2 * DAY);
    state = await stripe.invoices.retrieve(inv.id);
    expect(state).toMatchObject({ status: "uncollectible", attempt_count: 3, next_payment_attempt: null });
    expect((await eventsOf(inv.id)).map((e) => e.type)).toEqual(["invoice.finalized", "invoice.payment_failed", "invoice.payment_failed", "invoice.payment_failed", "invoice.marked_uncollectible"]);
    const charges = (await stripe.charges.list({ customer: c.id })).data;
    expect(charges.map((ch) => [ch.status, ch.failure_code])).toEqual([["failed", "card_declined"], ["failed", "card_declined"], ["failed", "card_declined"]]);
  });
});

describe("Checkout Sessions in setup mode", () => {
  it("a session for a customer: open with a URL and a SetupIntent; completed, the card is attached but not the default", async () => {
    const c = await stripe.customers.create({ name: "Setup" });
    const session = await stripe.checkout.sessions.create({ mode: "setup", customer: c.id, currency: "usd", success_url: "https://app.example/ok", cancel_url: "https://app.example/cancel", metadata: { office_ref: "off_1" } });
    expect(session).toMatchObject({ object: "checkout.session", mode: "setup", status: "open", customer: c.id, currency: "usd", payment_status: "no_payment_required", metadata: { office_ref: "off_1" } });
    expect(session.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/checkout\/cs_test_/);
    expect(session.expires_at - session.created).toBe(DAY);
    const si = await stripe.setupIntents.retrieve(session.setup_intent as string);
    expect(si).toMatchObject({ status: "requires_payment_method", customer: c.id, payment_method: null, usage: "off_session" });

    const res = await complete(session.id, "pm_card_visa");
    expect(res.status).toBe(200);
    const done = await stripe.checkout.sessions.retrieve(session.id);
    expect(done).toMatchObject({ status: "complete", url: null });
    const succeeded = await stripe.setupIntents.retrieve(si.id);
    expect(succeeded.status).toBe("succeeded");
    const pm = await stripe.paymentMethods.retrieve(succeeded.payment_method as string);
    expect(pm).toMatchObject({ customer: c.id, card: { brand: "visa", last4: "4242" } });
    // Not the customer's default by itself: the integration sets it.
    expect((await stripe.customers.retrieve(c.id) as Stripe.Customer).invoice_settings.default_payment_method).toBeNull();
    expect((await eventsOf(c.id)).map((e) => e.type)).toEqual(expect.arrayContaining(["payment_method.attached", "setup_intent.succeeded", "checkout.session.completed"]));
    expect((await eventsOf(session.id)).map((e) => e.type)).toEqual(["checkout.session.completed"]);
    // Completed once only.
    expect((await complete(session.id)).status).toBe(400);
    // Set as the default, read back with the card expanded; detached, the default is cleared (customer.updated).
    const updated = await stripe.customers.update(c.id, { invoice_settings: { default_payment_method: pm.id }, expand: ["invoice_settings.default_payment_method"] });
    expect((updated.invoice_settings.default_payment_method as Stripe.PaymentMethod).card!.last4).toBe("4242");
    await stripe.paymentMethods.detach(pm.id);
    expect((await stripe.customers.retrieve(c.id) as Stripe.Customer).invoice_settings.default_payment_method).toBeNull();
    expect((await eventsOf(pm.id)).map((e) => e.type)).toContain("payment_method.detached");
  });

  it("refuses what setup mode requires or the emulator does not emulate, as Stripe names it", async () => {
    const c = await stripe.customers.create({ name: "Strict" });
    const noCurrency = await stripe.checkout.sessions.create({ mode: "setup", customer: c.id, success_url: "https://app.example/ok" }).catch((e) => e);
    expect(noCurrency).toMatchObject({ statusCode: 400, param: "currency" });
    const unknown = await stripe.checkout.sessions.create({ mode: "setup", customer: c.id, currency: "usd", success_url: "https://app.example/ok", colour: "blue" } as never).catch((e) => e);
    expect(unknown).toMatchObject({ statusCode: 400, code: "parameter_unknown", param: "colour" });
    const payment = await stripe.checkout.sessions.create({ mode: "payment", customer: c.id, currency: "usd", success_url: "https://app.example/ok" }).catch((e) => e);
    expect(payment).toMatchObject({ statusCode: 400, param: "mode" });
    const missing = await stripe.checkout.sessions.retrieve("cs_test_nope").catch((e) => e);
    expect(missing).toMatchObject({ statusCode: 404, code: "resource_missing" });
  });

  it("sessions, setup intents and payment intents carry exactly the SDK types' fields", async () => {
    const c = await stripe.customers.create({ name: "Shapes" });
    const session = await stripe.checkout.sessions.create({ mode: "setup", customer: c.id, currency: "usd", success_url: "https://app.example/ok" });
    const si = await stripe.setupIntents.retrieve(session.setup_intent as string);
    const inv = await finalized(c.id);
    advance(3600);
    const payments = await stripe.invoicePayments.list({ invoice: inv.id });
    const intent = await stripe.paymentIntents.retrieve(payments.data[0]!.payment.payment_intent as string);
    const fields = sdkFields(["Checkout.Session", "SetupIntent", "PaymentIntent"]);
    for (const [name, obj] of [["Checkout.Session", session], ["SetupIntent", si]] as const) {
      const keys = new Set(Object.keys(obj).filter((k) => k !== "lastResponse"));
      expect([...keys].filter((k) => !fields[name]!.all.has(k)), `${name}: fields the version lacks`).toEqual([]);
      expect([...fields[name]!.required].filter((k) => !keys.has(k)), `${name}: required fields missing`).toEqual([]);
    }
    // A payment intent: the fields it has are the version's (the emulator shows a subset).
    expect(Object.keys(intent).filter((k) => k !== "lastResponse" && !fields.PaymentIntent!.all.has(k))).toEqual([]);
  });
});
