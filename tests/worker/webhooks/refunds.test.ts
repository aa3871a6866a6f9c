// Refunds as Stripe makes them (docs/payment-plan.md §8.7, §9.6): asynchronous (the emulator's
// test cards `pm_card_pendingRefund` and `pm_card_refundFail`, settled on its clock), followed
// through Stripe's refund events; refunds made in the Stripe Dashboard recorded from the events,
// bound only through ids we stored.
import { env, SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../../src/db/audit";
import { refunds } from "../../../src/db/refunds";
import { webhookEvents } from "../../../src/db/webhook-events";
import { bearer, mintToken } from "../../harness/auth";
import { testDb } from "../../harness/seed";
import { chargeOfInvoice, emulatorLog, pushedOffice, stripeLog, syncStripe, until, untilStripeAttempted } from "../../harness/stripe";
import { deliver, emulatorEvents, stripeEvent } from "../../harness/webhooks";

const api = "https://billing.test/v1";
const admin = async () => ({ ...bearer(await mintToken("platform_admin")), "content-type": "application/json" });

/** A request to the emulator as a Stripe user would make it (the Dashboard, the portal): our test key, form-encoded. */
async function stripeApi<T = Record<string, unknown>>(method: string, path: string, form?: Record<string, string>): Promise<T> {
  const res = await fetch(new URL(path, env.STRIPE_API_BASE!), {
    method,
    headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, "content-type": "application/x-www-form-urlencoded" },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  const body = (await res.json()) as T;
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/**
 * An office whose setup invoice (25,000) Stripe collected with one of Stripe's test payment
 * methods: its first attempt is declined, then the office's admin sets the card as the customer's
 * default (as in the billing portal) and Stripe's retry pays it.
 */
async function paidWith(token: string) {
  const o = await pushedOffice({ decline: true, attempted: true });
  const pm = await stripeApi<Stripe.PaymentMethod>("POST", `/v1/payment_methods/${token}/attach`, { customer: o.customerId });
  await stripeApi("POST", `/v1/customers/${o.customerId}`, { "invoice_settings[default_payment_method]": pm.id, email: "billing@harbor.example" });
  await stripeApi("POST", `/v1/invoices/${o.stripeId}/pay`, {});
  return o;
}

const refund = async (officeId: string, invoiceId: string, body: Record<string, unknown>) =>
  SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}/refunds`, { method: "POST", headers: await admin(), body: JSON.stringify(body) });

type InvoiceRead = { status: string; amountPaid: number; amountRefunded: number; refunds: { id: string; amount: number; status: string; errorCode: string | null; source: string; reason: string }[] };
async function read(officeId: string, invoiceId: string): Promise<InvoiceRead> {
  const res = await SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}`, { headers: await admin() });
  expect(res.status).toBe(200);
  return (await res.json()) as InvoiceRead;
}

/** Moves the emulator's clock past its refund settlement delay (30 s): asynchronous refunds settle. */
const settleRefunds = () => fetch(new URL("/_emulator/clock/advance", env.STRIPE_API_BASE!), { method: "POST", body: JSON.stringify({ seconds: 31 }) });

/** The events the emulator emitted about `id`, of the given types (waiting for them). */
async function eventsOf(id: string, types: string[]) {
  return until(`events ${types.join(", ")} of ${id}`, async () => {
    const found = (await emulatorEvents(id)).filter((e) => types.includes(e.type));
    return types.every((t) => found.some((e) => e.type === t)) ? found : null;
  });
}

async function audits(officeId: string, action: string) {
  return testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, action)));
}

describe("refunds follow Stripe's status", () => {
  it("pending → succeeded: recorded pending (counted as Stripe counts it), never made twice, settled by refund.updated however the events arrive", async () => {
    const { officeId, setup } = await paidWith("pm_card_pendingRefund");
    const res = await refund(officeId, setup.id, { amount: 10_000, reason: "billing_error" });
    expect(res.status, await res.clone().text()).toBe(202);
    const made = (await res.json()) as { id: string; status: string; remaining: number };
    expect(made).toMatchObject({ status: "pending", remaining: 15_000 });
    expect(await read(officeId, setup.id)).toMatchObject({ status: "paid", amountRefunded: 10_000, refunds: [{ id: made.id, amount: 10_000, status: "pending", source: "api" }] });
    // Stripe has it: the outbox does not make it again.
    expect((await syncStripe(officeId)).refunded).toEqual([]);
    expect((await emulatorLog()).filter((r) => r.path === "/v1/refunds" && r.idempotencyKey === `refund_${made.id}`)).toHaveLength(1);

    const [row] = await testDb().select().from(refunds).where(eq(refunds.id, made.id));
    const stripeRefundId = (await stripeLog(officeId)).find((r) => r.idempotencyKey === `refund_${made.id}`)!.stripeIds![0]!;
    expect(row!.stripeRefundIndex).not.toBeNull();
    await settleRefunds();
    const events = await eventsOf(stripeRefundId, ["refund.created", "refund.updated"]);
    // Out of order and twice: refund.updated (succeeded) first, then the older refund.created (pending), then the update again.
    const updated = events.find((e) => e.type === "refund.updated")!;
    const created = events.find((e) => e.type === "refund.created")!;
    expect(created.data.object).toMatchObject({ status: "pending" });
    for (const e of [updated, created, updated]) expect((await deliver(e)).status).toBe(200);
    await syncStripe(officeId);
    expect(await read(officeId, setup.id)).toMatchObject({ amountRefunded: 10_000, refunds: [{ id: made.id, status: "succeeded", errorCode: null }] });
    expect(await audits(officeId, "refund.succeeded")).toHaveLength(1);
    const rows = await testDb().select().from(webhookEvents).where(eq(webhookEvents.officeId, officeId));
    expect(rows.filter((r) => r.id === created.id || r.id === updated.id).map((r) => r.status)).toEqual(["processed", "processed"]);
  });

  it("succeeded → failed: a refund Stripe made and later failed leaves amountRefunded, audited; late events change nothing", async () => {
    const { officeId, setup, stripeId } = await paidWith("pm_card_refundFail");
    const res = await refund(officeId, setup.id, { amount: 20_000, reason: "duplicate" });
    expect(res.status, await res.clone().text()).toBe(201);
    const made = (await res.json()) as { id: string };
    expect(await read(officeId, setup.id)).toMatchObject({ amountRefunded: 20_000, refunds: [{ id: made.id, status: "succeeded" }] });
    const stripeRefundId = (await stripeLog(officeId)).find((r) => r.idempotencyKey === `refund_${made.id}`)!.stripeIds![0]!;
    await settleRefunds();
    const events = await eventsOf(stripeRefundId, ["refund.created", "refund.failed"]);
    const failed = events.find((e) => e.type === "refund.failed")!;
    expect(failed.data.object).toMatchObject({ status: "failed", failure_reason: "expired_or_canceled_card" });
    expect((await deliver(failed)).status).toBe(200);
    await syncStripe(officeId);
    expect(await read(officeId, setup.id)).toMatchObject({ amountPaid: 25_000, amountRefunded: 0, refunds: [{ id: made.id, status: "failed", errorCode: "expired_or_canceled_card" }] });
    const [audit] = await audits(officeId, "refund.failed");
    expect(audit!.details).toMatchObject({ amount: 20_000, failureReason: "expired_or_canceled_card", amountRefunded: { from: 20_000, to: 0 } });
    // The older events, late: refund.created (succeeded) and the charge's charge.refunded (20,000 refunded then).
    const charge = await chargeOfInvoice(stripeId);
    const refunded = (await eventsOf(charge.id, ["charge.refunded"])).find((e) => e.type === "charge.refunded")!;
    expect(refunded.data.object).toMatchObject({ amount_refunded: 20_000 });
    for (const e of [events.find((e) => e.type === "refund.created")!, refunded]) expect((await deliver(e)).status).toBe(200);
    await syncStripe(officeId);
    expect(await read(officeId, setup.id)).toMatchObject({ amountRefunded: 0, refunds: [{ id: made.id, status: "failed" }] });
    // The money is back with the office: it can be refunded again.
    expect((await refund(officeId, setup.id, { amount: 25_000, reason: "duplicate" })).status).toBe(201);
  });
});

describe("a refund whose settling event never came", () => {
  it("is settled by the reconciliation, which reads it from Stripe", async () => {
    const { officeId, setup } = await paidWith("pm_card_pendingRefund");
    const res = await refund(officeId, setup.id, { amount: 5_000, reason: "service_issue" });
    expect(res.status).toBe(202);
    const made = (await res.json()) as { id: string };
    await settleRefunds(); // Stripe settles it; its refund.updated is never delivered
    const run = await SELF.fetch(`${api}/admin/reconciliation-runs`, { method: "POST", headers: await admin(), body: JSON.stringify({ officeIds: [officeId] }) });
    expect(run.status, await run.clone().text()).toBe(200);
    expect(await read(officeId, setup.id)).toMatchObject({ amountRefunded: 5_000, refunds: [{ id: made.id, status: "succeeded" }] });
    const [audit] = await audits(officeId, "refund.succeeded");
    expect(audit!.details).toMatchObject({ source: "reconciliation", stripeStatus: "succeeded" });
  });
});

describe("a refund whose answer was lost", () => {
  it("is found by its event (our refund_ref, on the invoice bound through the payment intent) and takes its Stripe id: never a second refund", async () => {
    const { officeId, setup, stripeId } = await pushedOffice({ attempted: true });
    const res = await refund(officeId, setup.id, { amount: 7_000, reason: "billing_error" });
    expect(res.status).toBe(201);
    const made = (await res.json()) as { id: string };
    // As if Stripe made it but its answer never reached us: pending, without the Stripe id.
    await testDb().update(refunds).set({ status: "pending", stripeRefundRef: null, stripeRefundIndex: null }).where(eq(refunds.id, made.id));
    const charge = await chargeOfInvoice(stripeId);
    const stripeRefund = (await stripeApi<Stripe.ApiList<Stripe.Refund>>("GET", `/v1/refunds?charge=${charge.id}`)).data[0]!;
    expect(stripeRefund.metadata).toMatchObject({ refund_ref: made.id });
    await deliver((await eventsOf(stripeRefund.id, ["refund.created"]))[0]!);
    const report = await syncStripe(officeId);
    expect(report.refunded).toEqual([]); // the event came first: nothing left to make
    const rows = await testDb().select().from(refunds).where(eq(refunds.invoiceId, setup.id));
    expect(rows.map((r) => [r.id, r.status, r.stripeRefundIndex !== null])).toEqual([[made.id, "succeeded", true]]);
    expect(await read(officeId, setup.id)).toMatchObject({ amountRefunded: 7_000 });
    expect((await emulatorLog()).filter((r) => r.path === "/v1/refunds" && r.idempotencyKey === `refund_${made.id}`)).toHaveLength(1);
  });
});

describe("refunds made in the Stripe Dashboard", () => {
  it("are recorded from Stripe's events through the payment intent's invoice we stored, once, whatever the order", async () => {
    const { officeId, setup, stripeId } = await pushedOffice({ attempted: true });
    const charge = await chargeOfInvoice(stripeId);
    // Made directly on Stripe, with no metadata of ours.
    const made = await stripeApi<Stripe.Refund>("POST", "/v1/refunds", { payment_intent: String(charge.payment_intent), amount: "3000", reason: "requested_by_customer" });
    const events = await eventsOf(charge.id, ["charge.refunded"]);
    const created = (await eventsOf(made.id, ["refund.created"]))[0]!;
    // charge.refunded first, then refund.created twice.
    for (const e of [events.find((e) => e.type === "charge.refunded")!, created, created]) expect((await deliver(e)).status).toBe(200);
    await syncStripe(officeId);
    const invoice = await read(officeId, setup.id);
    // The invoice's own payment event never came: Stripe's invoice was read (paid).
    expect(invoice).toMatchObject({ status: "paid", amountPaid: 25_000, amountRefunded: 3_000 });
    expect(invoice.refunds).toEqual([expect.objectContaining({ amount: 3_000, status: "succeeded", source: "stripe", reason: "requested_by_customer" })]);
    expect(await audits(officeId, "refund.recorded_from_stripe")).toHaveLength(1);
    // A second Dashboard refund, then only its refund.created: recorded too.
    const second = await stripeApi<Stripe.Refund>("POST", "/v1/refunds", { charge: charge.id, amount: "2000" });
    await deliver((await eventsOf(second.id, ["refund.created"]))[0]!);
    await syncStripe(officeId);
    expect(await read(officeId, setup.id)).toMatchObject({ amountRefunded: 5_000, refunds: [{ amount: 3_000 }, { amount: 2_000, source: "stripe", reason: "billing_error" }] });
  });

  it("a refund event whose metadata names another office's invoice is rejected; a forged refund id binds nothing", async () => {
    const [a, b] = await Promise.all([pushedOffice({ attempted: true }), pushedOffice({ attempted: true })]);
    const chargeA = await chargeOfInvoice(a.stripeId);
    // Someone with Dashboard access refunds A's payment and sets B's invoice in its metadata.
    const crossed = await stripeApi<Stripe.Refund>("POST", "/v1/refunds", { payment_intent: String(chargeA.payment_intent), amount: "1000", "metadata[invoice_ref]": b.setup.id });
    const event = (await eventsOf(crossed.id, ["refund.created"]))[0]!;
    expect(await (await deliver(event)).json()).toMatchObject({ status: "received" });
    await syncStripe(a.officeId);
    const eventRow = async (id: string) => (await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, id)))[0];
    expect(await eventRow(event.id)).toMatchObject({ officeId: a.officeId, status: "rejected", error: "binding_mismatch" });
    // A forged event: A's refund, its metadata naming office B.
    const forged = stripeEvent("refund.updated", { ...event.data.object, metadata: { office_ref: b.officeId } });
    expect(await (await deliver(forged)).json()).toMatchObject({ status: "rejected" });
    // A refund id Stripe never made, on A's charge: nothing is recorded.
    const unknown = stripeEvent("refund.created", { ...event.data.object, id: "re_forged0000000000000001", metadata: {} });
    await deliver(unknown);
    await syncStripe(a.officeId);
    expect(await eventRow(unknown.id)).toMatchObject({ status: "ignored", error: "unknown_at_stripe" });
    for (const o of [a, b]) {
      await syncStripe(o.officeId);
      expect(await read(o.officeId, o.setup.id)).toMatchObject({ amountRefunded: 0, refunds: [] });
    }
  });
});
