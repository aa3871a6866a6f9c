import { env, runInDurableObject, SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../../src/db/audit";
import { invoices } from "../../../src/db/invoices";
import { offices } from "../../../src/db/offices";
import { webhookEvents } from "../../../src/db/webhook-events";
import { bearer, mintToken } from "../../harness/auth";
import { testDb } from "../../harness/seed";
import { chargeOfInvoice, clearFaultRule, faultRule, invoiceRows, pushedOffice, stripeLog, syncStripe, until, untilStripeAttempted } from "../../harness/stripe";
import { deliver, emulatorEvents, fixtures, invoiceObject, stripeEvent } from "../../harness/webhooks";

const api = "https://billing.test/v1";


const office = async (id: string) => (await testDb().select().from(offices).where(eq(offices.id, id)))[0]!;
const invoice = async (id: string) => (await testDb().select().from(invoices).where(eq(invoices.id, id)))[0]!;

/** Delivers the emulator's own events about an invoice (as Stripe would post them), then lets the office apply them. */
async function relayEmulatorEvents(officeId: string, internalId: string, types?: string[]) {
  const events = (await emulatorEvents(internalId)).filter((e) => !types || types.includes(e.type));
  for (const e of events) expect((await deliver(e)).status).toBe(200);
  await syncStripe(officeId);
  return events;
}

describe("Stripe events applied to invoices and offices", () => {
  it("marks an invoice paid from Stripe's own events, once, however often they are delivered", async () => {
    const { officeId, setup } = await pushedOffice();
    await untilStripeAttempted(setup.id); // the emulator collects 10–50 ms after finalize (later under load)
    const events = await relayEmulatorEvents(officeId, setup.id);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]));
    expect(await invoice(setup.id)).toMatchObject({ status: "paid", amountPaid: 25_000 });
    const rows = await testDb().select().from(webhookEvents).where(eq(webhookEvents.officeId, officeId));
    expect(rows.every((r) => r.status === "processed" && r.attempts === 1)).toBe(true);
    // Delivered again: acknowledged, nothing changes.
    for (const e of events) expect(await (await deliver(e)).json()).toMatchObject({ duplicate: true });
    await syncStripe(officeId);
    expect((await testDb().select().from(webhookEvents).where(eq(webhookEvents.officeId, officeId))).every((r) => r.attempts === 1)).toBe(true);
    const changes = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "webhook.invoice.paid")));
    expect(changes).toHaveLength(1);
  });

  it("a failed payment makes the office past_due; paying it makes the office active again", async () => {
    const { officeId, setup, stripeId, customerId } = await pushedOffice({ decline: true });
    await untilStripeAttempted(setup.id);
    await relayEmulatorEvents(officeId, setup.id);
    expect(await invoice(setup.id)).toMatchObject({ status: "open" });
    expect((await invoice(setup.id)).paymentFailedAt).not.toBeNull();
    const pastDue = await office(officeId);
    expect(pastDue.status).toBe("past_due");
    expect(pastDue.pastDueSince).not.toBeNull();
    // The office fixes its card (as through the portal) and Stripe retries the payment.
    const key = `Bearer ${env.STRIPE_SECRET_KEY}`;
    await fetch(new URL(`/v1/customers/${customerId}`, env.STRIPE_API_BASE!), { method: "POST", headers: { authorization: key, "content-type": "application/x-www-form-urlencoded" }, body: "email=billing%40harbor.example" });
    const pay = await fetch(new URL(`/v1/invoices/${stripeId}/pay`, env.STRIPE_API_BASE!), { method: "POST", headers: { authorization: key } });
    expect(pay.status).toBe(200);
    await relayEmulatorEvents(officeId, setup.id, ["invoice.paid"]);
    expect(await invoice(setup.id)).toMatchObject({ status: "paid", amountPaid: 25_000, paymentFailedAt: null });
    expect(await office(officeId)).toMatchObject({ status: "active", pastDueSince: null });
    const transitions = (await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "office.status_changed")))).map((a) => (a.details as { to: string }).to);
    expect(transitions).toEqual(["past_due", "active"]);
  });

  it("a past_due office unpaid after its grace period is suspended, and active again once paid", async () => {
    const { officeId, setup, stripeId } = await pushedOffice({ decline: true, graceDays: 3 });
    const failed = stripeEvent("invoice.payment_failed", invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "open", amount: 25_000 }));
    await deliver(failed);
    await syncStripe(officeId);
    expect((await office(officeId)).status).toBe("past_due");
    // Time passes: the failure is four days old (the record is moved, not the clock).
    await testDb().update(offices).set({ pastDueSince: Date.now() - 4 * 86_400_000 }).where(eq(offices.id, officeId));
    await syncStripe(officeId);
    expect((await office(officeId)).status).toBe("suspended");
    await deliver(stripeEvent("invoice.paid", invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "paid", amount: 25_000 })));
    await syncStripe(officeId);
    expect(await office(officeId)).toMatchObject({ status: "active", pastDueSince: null });
  });

  it("every order of finalized, payment_failed and paid ends paid with the office active", async () => {
    const orders = [
      ["invoice.finalized", "invoice.payment_failed", "invoice.paid"],
      ["invoice.finalized", "invoice.paid", "invoice.payment_failed"],
      ["invoice.payment_failed", "invoice.finalized", "invoice.paid"],
      ["invoice.payment_failed", "invoice.paid", "invoice.finalized"],
      ["invoice.paid", "invoice.finalized", "invoice.payment_failed"],
      ["invoice.paid", "invoice.payment_failed", "invoice.finalized"],
    ];
    await Promise.all(
      orders.map(async (order) => {
        const { officeId, setup, stripeId } = await pushedOffice({ decline: true });
        const base = Math.floor(Date.now() / 1000) - 100;
        // Stripe's times are the true order (finalized, failed, paid); the delivery order is the permutation.
        const created: Record<string, number> = { "invoice.finalized": base, "invoice.payment_failed": base + 10, "invoice.paid": base + 20 };
        for (const type of order) {
          const status = type === "invoice.paid" ? "paid" : "open";
          const res = await deliver(stripeEvent(type, invoiceObject({ stripeId, officeId, invoiceId: setup.id, status, amount: 25_000 }), { created: created[type] }));
          expect(res.status).toBe(200);
          await syncStripe(officeId); // each applied as it arrives
        }
        expect(await invoice(setup.id), order.join(" → ")).toMatchObject({ status: "paid", amountPaid: 25_000 });
        expect((await office(officeId)).status, order.join(" → ")).toBe("active");
      }),
    );
  }, 240_000); // heavy: many requests; generous for a busy machine

  it("a late event never moves an invoice backwards: a void after paid is checked with Stripe, which says paid", async () => {
    const { officeId, setup, stripeId } = await pushedOffice();
    await untilStripeAttempted(setup.id);
    await relayEmulatorEvents(officeId, setup.id, ["invoice.paid"]);
    expect((await invoice(setup.id)).status).toBe("paid");
    const voided = stripeEvent("invoice.voided", invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "void", amount: 25_000 }));
    await deliver(voided);
    await syncStripe(officeId);
    expect((await invoice(setup.id)).status).toBe("paid");
    const [entry] = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "webhook.invoice.voided")));
    expect(entry!.details).toMatchObject({ changed: false, source: "stripe_read" });
    expect((await stripeLog(officeId)).some((r) => r.operation === "readInvoice")).toBe(true);
  });

  it("an event whose processing fails (Stripe unreachable for its re-read) stays recorded and is retried", async () => {
    const { officeId, setup, stripeId } = await pushedOffice();
    await untilStripeAttempted(setup.id);
    await relayEmulatorEvents(officeId, setup.id, ["invoice.paid"]);
    await faultRule(`/v1/invoices/${stripeId}\n`, ["500"]);
    const voided = stripeEvent("invoice.voided", invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "void", amount: 25_000 }));
    await deliver(voided);
    const first = await syncStripe(officeId);
    expect(first.retrying).toContain(voided.id);
    const [pending] = await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, voided.id));
    expect(pending).toMatchObject({ status: "received" });
    await clearFaultRule(`/v1/invoices/${stripeId}\n`);
    await runInDurableObject(env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId)), (_o, state) => void state.storage.sql.exec("UPDATE stripe_retry SET next_at = 0"));
    await syncStripe(officeId);
    const [done] = await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, voided.id));
    expect(done).toMatchObject({ status: "processed" });
    expect((await invoice(setup.id)).status).toBe("paid");
  });

  it("applies voided and marked_uncollectible, then a later payment; finalized repairs an unrecorded push", async () => {
    const a = await pushedOffice({ decline: true });
    await deliver(stripeEvent("invoice.voided", invoiceObject({ stripeId: a.stripeId, officeId: a.officeId, invoiceId: a.setup.id, status: "void", amount: 25_000 })));
    await syncStripe(a.officeId);
    expect(await invoice(a.setup.id)).toMatchObject({ status: "void", stripeState: "voided" });

    const b = await pushedOffice({ decline: true });
    await deliver(stripeEvent("invoice.marked_uncollectible", invoiceObject({ stripeId: b.stripeId, officeId: b.officeId, invoiceId: b.setup.id, status: "uncollectible", amount: 25_000 })));
    await syncStripe(b.officeId);
    expect((await invoice(b.setup.id)).status).toBe("uncollectible");
    await deliver(stripeEvent("invoice.paid", invoiceObject({ stripeId: b.stripeId, officeId: b.officeId, invoiceId: b.setup.id, status: "paid", amount: 25_000 })));
    await syncStripe(b.officeId);
    expect((await invoice(b.setup.id)).status).toBe("paid");

    const c = await pushedOffice({ decline: true });
    await testDb().update(invoices).set({ stripeState: "draft_created" }).where(eq(invoices.id, c.setup.id));
    await deliver(stripeEvent("invoice.finalized", invoiceObject({ stripeId: c.stripeId, officeId: c.officeId, invoiceId: c.setup.id, status: "open", amount: 25_000 })));
    await syncStripe(c.officeId);
    expect((await invoice(c.setup.id)).stripeState).toBe("finalized");
  });

  it("payment_action_required counts as a failed attempt (dunning)", async () => {
    const { officeId, setup, stripeId } = await pushedOffice({ decline: true });
    await deliver(stripeEvent("invoice.payment_action_required", invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "open", amount: 25_000 })));
    await syncStripe(officeId);
    expect((await office(officeId)).status).toBe("past_due");
  });

  it("charge.refunded records the charge's refunds as Stripe lists them, never double counting our own refunds", async () => {
    const { officeId, setup, stripeId } = await pushedOffice();
    await untilStripeAttempted(setup.id);
    const admin = { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" };
    const res = await SELF.fetch(`${api}/offices/${officeId}/invoices/${setup.id}/refunds`, { method: "POST", headers: admin, body: JSON.stringify({ amount: 4_000, reason: "billing_error" }) });
    expect(res.status).toBe(201);
    // Stripe's own charge.refunded for that refund (the charge names no invoice of ours: found by
    // its id), bound through its payment intent: nothing more is counted.
    const { id: chargeId } = await chargeOfInvoice(stripeId);
    const [charge] = await until("the charge.refunded event", async () => {
      const found = (await emulatorEvents(chargeId)).filter((e) => e.type === "charge.refunded");
      return found.length > 0 ? found : null;
    });
    expect((await deliver(charge!)).status).toBe(200);
    await relayEmulatorEvents(officeId, setup.id, ["invoice.paid"]);
    expect(await invoice(setup.id)).toMatchObject({ status: "paid", amountRefunded: 4_000 });
    const [row] = await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, charge!.id));
    expect(row).toMatchObject({ officeId, status: "processed" });
    // A forged figure in the event is not applied: Stripe's refunds of the charge are read (4,000).
    const forged = stripeEvent("charge.refunded", { ...fixtures.charge, ...charge!.data.object, amount_refunded: 10_000 });
    await deliver(forged);
    await syncStripe(officeId);
    expect((await invoice(setup.id)).amountRefunded).toBe(4_000);
    // A refund made on Stripe's dashboard (6,000 more): its charge.refunded records it (total 10,000).
    const made = await fetch(new URL("/v1/refunds", env.STRIPE_API_BASE!), {
      method: "POST",
      headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ charge: chargeId, amount: "6000" }).toString(),
    });
    expect(made.status).toBe(200);
    const latest = await until("the second charge.refunded event", async () => {
      const found = (await emulatorEvents(chargeId)).filter((e) => e.type === "charge.refunded");
      return found.length > 1 ? found.at(-1) : null;
    });
    await deliver(latest);
    await syncStripe(officeId);
    expect((await invoice(setup.id)).amountRefunded).toBe(10_000);
  });

  it("records disputes on the office (found through the charge's customer) and customer changes", async () => {
    const { officeId, setup, stripeId, customerId } = await pushedOffice();
    await untilStripeAttempted(setup.id);
    const paid = await chargeOfInvoice(stripeId);
    const dispute = stripeEvent("charge.dispute.created", { ...fixtures.dispute, id: `dp_${crypto.randomUUID().slice(0, 8)}`, charge: paid.id, amount: 25_000, status: "needs_response", reason: "fraudulent" });
    expect(await (await deliver(dispute)).json()).toMatchObject({ status: "received" });
    await syncStripe(officeId);
    const [row] = await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, dispute.id));
    expect(row).toMatchObject({ officeId, status: "processed" });
    const closed = stripeEvent("charge.dispute.closed", { ...dispute.data.object, status: "won" });
    await deliver(closed);

    const updated = stripeEvent("customer.updated", { ...fixtures.customer, id: customerId, metadata: { office_ref: officeId } }, { previousAttributes: { email: "old@harbor.example" } });
    await deliver(updated);
    await syncStripe(officeId);
    const entries = await testDb().select().from(auditLog).where(eq(auditLog.officeId, officeId));
    const byAction = (a: string) => entries.find((e) => e.action === a)?.details as Record<string, unknown> | undefined;
    expect(byAction("webhook.charge.dispute.created")).toMatchObject({ status: "needs_response", reason: "fraudulent", amount: 25_000 });
    expect(byAction("webhook.charge.dispute.closed")).toMatchObject({ status: "won" });
    expect(byAction("webhook.customer.updated")).toMatchObject({ fields: ["email"] });
    expect(JSON.stringify(entries)).not.toContain("old@harbor.example");

    await deliver(stripeEvent("customer.deleted", { ...fixtures.customer, id: customerId, metadata: { office_ref: officeId } }));
    await syncStripe(officeId);
    expect((await office(officeId)).stripeCustomerRef).toBeNull();
    void setup;
  });
});
