import type Stripe from "stripe";
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../../src/db/audit";
import { invoices } from "../../../src/db/invoices";
import { webhookEvents } from "../../../src/db/webhook-events";
import { bearer, mintToken } from "../../harness/auth";
import { onboardOffice } from "../../harness/billing";
import { addPaymentMethod, completeSetupSession, officeRow, relayEvents, setupSession } from "../../harness/payment-methods";
import { testDb } from "../../harness/seed";
import { emulatorLog, invoiceRows, stripeLog, stripeObject, syncStripe, untilStripeAttempted } from "../../harness/stripe";
import { deliver, emulatorEvents, invoiceObject, stripeEvent } from "../../harness/webhooks";

const api = "https://billing.test/v1";
const key = () => ({ authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, "content-type": "application/x-www-form-urlencoded" });
const stripePost = (path: string, body: string) => fetch(new URL(path, env.STRIPE_API_BASE!), { method: "POST", headers: key(), body });
const stub = (officeId: string) => env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
const invoice = async (id: string) => (await testDb().select().from(invoices).where(eq(invoices.id, id)))[0]!;
const stripeIdOf = async (officeId: string, invoiceId: string) => (await stripeLog(officeId)).find((r) => r.idempotencyKey === `invoice_${invoiceId}_create`)!.stripeIds![0]!;
const customerOf = async (officeId: string) => (await stripeLog(officeId)).find((r) => r.operation === "customer")!.stripeIds![0]!;
const readOffice = async (officeId: string) => {
  const res = await SELF.fetch(`${api}/offices/${officeId}`, { headers: bearer(await mintToken("office_viewer", [officeId])) });
  expect(res.status).toBe(200);
  return (await res.json()) as { status: string; paymentMethod: { status: string; brand: string | null; last4: string | null; expMonth: number | null; expYear: number | null } };
};
/** An invoice_now charge (its own invoice, finalized at once) pushed to Stripe; its id. */
async function chargeNow(officeId: string, amount: number) {
  const res = await SELF.fetch(`${api}/offices/${officeId}/charges`, {
    method: "POST",
    headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
    body: JSON.stringify({ amount, category: "training", mode: "invoice_now" }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  const { invoiceId } = (await res.json()) as { invoiceId: string };
  await syncStripe(officeId);
  return invoiceId;
}

describe("an office's payment method (docs/payment-plan.md §10)", () => {
  it("without one, invoices are sent by e-mail with a due date and dunning waits for it; overdue, the office is past_due", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 6_300 } });
    await syncStripe(officeId);
    expect((await readOffice(officeId)).paymentMethod).toEqual({ status: "none", brand: null, last4: null, expMonth: null, expYear: null });
    const setup = (await invoiceRows(officeId)).find((i) => i.kind === "setup")!;
    expect(setup).toMatchObject({ stripeState: "finalized", collectionMethod: "send_invoice" });
    const onStripe = await stripeObject<Stripe.Invoice>(`/v1/invoices/${await stripeIdOf(officeId, setup.id)}`);
    expect(onStripe).toMatchObject({ collection_method: "send_invoice", status: "open", attempt_count: 0, next_payment_attempt: null });
    expect(setup.dueAt).toBe(onStripe.due_date! * 1000);
    // Stripe's news of it changes nothing: not due yet, no dunning. The office's alarm waits for the due date.
    await relayEvents(officeId, setup.id, ["invoice.finalized"]);
    expect(await officeRow(officeId)).toMatchObject({ status: "active", pastDueSince: null });
    expect((await invoice(setup.id)).paymentFailedAt).toBeNull();
    const alarm = await runInDurableObject(stub(officeId), (_o, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(setup.dueAt!);
    // A failed try on the hosted invoice page before the due date: recorded, no dunning.
    const failedTry = stripeEvent("invoice.payment_failed", invoiceObject({ stripeId: onStripe.id!, officeId, invoiceId: setup.id, status: "open", amount: 6_300, customer: onStripe.customer as string }));
    expect((await deliver(failedTry)).status).toBe(200);
    await syncStripe(officeId);
    const [recorded] = await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, failedTry.id));
    expect(recorded).toMatchObject({ status: "processed" });
    expect((await invoice(setup.id)).paymentFailedAt).toBeNull();
    expect(await officeRow(officeId)).toMatchObject({ status: "active" });
    // The due date passes with the invoice unpaid: dunning from the due date.
    const dueAt = Date.now() - 60_000;
    await testDb().update(invoices).set({ dueAt }).where(eq(invoices.id, setup.id));
    await syncStripe(officeId);
    expect(await invoice(setup.id)).toMatchObject({ status: "open", paymentFailedAt: dueAt });
    expect(await officeRow(officeId)).toMatchObject({ status: "past_due" });
    const overdue = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "invoice.overdue")));
    expect(overdue).toHaveLength(1);
  });

  it("adds a card through the hosted setup page: the customer's default is set once, the office shows it, invoices are charged automatically", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    const { sessionId, paymentMethodId } = await addPaymentMethod(officeId);
    // What crossed to Stripe for the link: the allowlisted setup-mode session, nothing else.
    const created = (await emulatorLog()).find((r) => r.path === "/v1/checkout/sessions" && r.status === 200 && r.body.includes(officeId))!;
    expect([...new URLSearchParams(created.body).keys()].sort()).toEqual(["cancel_url", "currency", "customer", "metadata[office_ref]", "mode", "success_url"]);
    expect(new URLSearchParams(created.body).get("mode")).toBe("setup");
    const customerId = await customerOf(officeId);
    const customer = await stripeObject<Stripe.Customer>(`/v1/customers/${customerId}`);
    expect(customer.invoice_settings.default_payment_method).toBe(paymentMethodId);
    const view = await readOffice(officeId);
    expect(view.paymentMethod).toMatchObject({ status: "on_file", brand: "visa", last4: "4242", expMonth: 12 });
    expect(view.paymentMethod.expYear).toBeGreaterThan(2000);
    // Exactly once: the same event again is a duplicate; Stripe's redelivery under a new id sets nothing new.
    const [completed] = await emulatorEvents(sessionId).then((es) => es.filter((e) => e.type === "checkout.session.completed"));
    expect(await (await deliver(completed!)).json()).toMatchObject({ duplicate: true });
    expect((await deliver({ ...completed!, id: `evt_again${sessionId.slice(-12)}` })).status).toBe(200);
    await syncStripe(officeId);
    const defaults = (await emulatorLog()).filter((r) => r.idempotencyKey === `customer_${officeId}_default_${sessionId}`);
    expect(defaults.filter((r) => !r.replayed && r.status === 200)).toHaveLength(1);
    // Invoices now: charged automatically, and paid.
    const invoiceId = await chargeNow(officeId, 4_200);
    expect(await invoice(invoiceId)).toMatchObject({ collectionMethod: "charge_automatically", dueAt: null });
    await untilStripeAttempted(invoiceId);
    await relayEvents(officeId, invoiceId, ["invoice.paid"]);
    expect(await invoice(invoiceId)).toMatchObject({ status: "paid", amountPaid: 4_200 });
    // The card is removed on Stripe (as through the portal): the office has none again.
    expect((await stripePost(`/v1/payment_methods/${paymentMethodId}/detach`, "")).status).toBe(200);
    await relayEvents(officeId, paymentMethodId, ["payment_method.detached"]);
    expect((await readOffice(officeId)).paymentMethod).toMatchObject({ status: "none", last4: null });
  });

  it("net terms agreed with the office (§10.4): invoices are sent by e-mail with the agreed due date even with a card on file; only platform_admin sets them", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    await addPaymentMethod(officeId);
    const patch = async (body: unknown, role: "platform_admin" | "office_admin") =>
      SELF.fetch(`${api}/offices/${officeId}`, {
        method: "PATCH",
        headers: { ...bearer(await mintToken(role, role === "platform_admin" ? [] : [officeId])), "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    // An office admin cannot set commercial terms (audited refusal), a bad term is a 400.
    expect((await patch({ collection: { method: "send_invoice", daysUntilDue: 30 } }, "office_admin")).status).toBe(403);
    expect((await patch({ collection: { method: "send_invoice", daysUntilDue: 91 } }, "platform_admin")).status).toBe(400);
    expect((await patch({ collection: { method: "send_invoice" } }, "platform_admin")).status).toBe(400);
    const set = await patch({ collection: { method: "send_invoice", daysUntilDue: 30 } }, "platform_admin");
    expect(set.status, await set.clone().text()).toBe(200);
    expect(((await set.json()) as { collection: unknown }).collection).toEqual({ method: "send_invoice", daysUntilDue: 30 });
    // Pushed with the agreed terms, not charged to the card on file.
    const netId = await chargeNow(officeId, 4_200);
    const net = await invoice(netId);
    expect(net).toMatchObject({ collectionMethod: "send_invoice", daysUntilDue: 30, status: "open" });
    const onStripe = await stripeObject<Stripe.Invoice>(`/v1/invoices/${await stripeIdOf(officeId, netId)}`);
    expect(onStripe.collection_method).toBe("send_invoice");
    // Stripe: `days_until_due` counts from the invoice's creation (finalization may fall in a later second).
    expect(onStripe.due_date! - onStripe.created).toBe(30 * 86_400);
    expect(net.dueAt).toBe(onStripe.due_date! * 1000);
    // Back to automatic: the next invoice is charged; the one already sent keeps its terms.
    expect(((await (await patch({ collection: { method: "automatic" } }, "platform_admin")).json()) as { collection: unknown }).collection).toEqual({ method: "automatic", daysUntilDue: null });
    const autoId = await chargeNow(officeId, 4_300);
    expect(await invoice(autoId)).toMatchObject({ collectionMethod: "charge_automatically", daysUntilDue: null });
    expect(await invoice(netId)).toMatchObject({ collectionMethod: "send_invoice", daysUntilDue: 30 });
  });

  it("a declining card on file: the automatic charge fails, the office is past_due, Stripe schedules a retry", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    await addPaymentMethod(officeId, "pm_card_chargeCustomerFail");
    expect((await readOffice(officeId)).paymentMethod).toMatchObject({ status: "on_file", last4: "0341" });
    const invoiceId = await chargeNow(officeId, 5_100);
    await untilStripeAttempted(invoiceId);
    await relayEvents(officeId, invoiceId, ["invoice.payment_failed"]);
    expect((await invoice(invoiceId)).paymentFailedAt).not.toBeNull();
    expect(await officeRow(officeId)).toMatchObject({ status: "past_due" });
    const onStripe = await stripeObject<Stripe.Invoice>(`/v1/invoices/${await stripeIdOf(officeId, invoiceId)}?expand[]=payments`);
    expect(onStripe).toMatchObject({ status: "open", attempt_count: 1 });
    expect(onStripe.next_payment_attempt).toBeGreaterThan(onStripe.created);
    const pi = onStripe.payments!.data[0]!.payment.payment_intent as string;
    const intent = await stripeObject<Stripe.PaymentIntent>(`/v1/payment_intents/${pi}`);
    expect(intent).toMatchObject({ status: "requires_payment_method", last_payment_error: { code: "card_declined" } });
  });

  it("refuses a completed checkout session we did not create: nothing set on Stripe, nothing stored", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    await setupSession(officeId); // ours (never completed): it makes the customer
    const customerId = await customerOf(officeId);
    // Someone with Dashboard access makes a session for our customer and completes it.
    const foreign = (await (await stripePost("/v1/checkout/sessions", `mode=setup&currency=usd&customer=${customerId}&success_url=${encodeURIComponent("https://elsewhere.example/ok")}`)).json()) as { id: string };
    await completeSetupSession(foreign.id);
    await relayEvents(officeId, foreign.id, ["checkout.session.completed"]);
    const [row] = await testDb().select().from(webhookEvents).where(and(eq(webhookEvents.officeId, officeId), eq(webhookEvents.type, "checkout.session.completed")));
    expect(row).toMatchObject({ status: "rejected", error: "session_unknown" });
    expect((await officeRow(officeId)).paymentMethodStatus).toBe("none");
    expect((await stripeObject<Stripe.Customer>(`/v1/customers/${customerId}`)).invoice_settings.default_payment_method).toBeNull();
  });
});
