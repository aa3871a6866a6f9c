import { SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { decide } from "../../../src/billing/payments";
import { auditLog } from "../../../src/db/audit";
import { invoices } from "../../../src/db/invoices";
import { webhookEvents } from "../../../src/db/webhook-events";
import { bearer, mintToken } from "../../harness/auth";
import { testDb } from "../../harness/seed";
import { chargeOfInvoice, invoiceRows, pushedOffice as pushedOfficeOnStripe, stripeLog, syncStripe } from "../../harness/stripe";
import { deliver, emulatorEvents, fixtures, invoiceObject, stripeEvent } from "../../harness/webhooks";

/**
 * Correctly signed events that name, in their metadata, something other than what the Stripe ids
 * we stored name (issue 14, item 1): anyone who can edit a Stripe object can write its metadata,
 * so metadata is a hint at most. None of these may move an invoice.
 */

const api = "https://billing.test/v1";
const admin = async () => ({ ...bearer(await mintToken("platform_admin")), "content-type": "application/json" });

/** An office whose setup invoice (`fee`) is on Stripe, after the emulator tried to collect it; `decline` leaves it open there. */
const pushedOffice = (opts: { decline?: boolean; fee?: number } = {}) => pushedOfficeOnStripe({ decline: opts.decline, setupFee: opts.fee ?? 6_300, attempted: true });

const invoice = async (id: string) => (await testDb().select().from(invoices).where(eq(invoices.id, id)))[0]!;
const eventRow = async (id: string) => (await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, id)))[0]!;
const errorLines = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map((args) => String(args[0])).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

afterEach(() => void vi.restoreAllMocks());

describe("hostile Stripe events: bound by the ids we stored, never by metadata", () => {
  it("invoice.paid and invoice.voided carrying office A's Stripe id but office B's references are refused, recorded, audited and logged", async () => {
    const [a, b] = await Promise.all([pushedOffice({ decline: true }), pushedOffice({ decline: true })]);
    const errors = vi.spyOn(console, "error");
    for (const type of ["invoice.paid", "invoice.voided"]) {
      const status = type === "invoice.paid" ? "paid" : "void";
      const hostile = stripeEvent(type, invoiceObject({ stripeId: a.stripeId, customer: a.customerId, officeId: b.officeId, invoiceId: b.setup.id, status, amount: 6_300 }));
      const res = await deliver(hostile);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ received: true, duplicate: false, status: "rejected" });
      // Recorded against the office the stored id names, never applied.
      expect(await eventRow(hostile.id)).toMatchObject({ status: "rejected", error: "binding_mismatch", officeId: a.officeId });
      const [entry] = await testDb().select().from(auditLog).where(and(eq(auditLog.action, "webhook.rejected"), eq(auditLog.chain, "platform"), eq(auditLog.officeId, a.officeId)));
      expect(entry).toBeDefined();
      const audits = await testDb().select().from(auditLog).where(and(eq(auditLog.action, "webhook.rejected"), eq(auditLog.officeId, a.officeId)));
      expect(audits.some((e) => e.outcome === "rejected" && (e.details as Record<string, unknown>).reason === "binding_mismatch" && (e.targetIds as string[]).includes(hostile.id))).toBe(true);
      // A repeat delivery is a duplicate; a replay is bound again and refused again.
      expect(await (await deliver(hostile)).json()).toMatchObject({ duplicate: true });
      const replay = await SELF.fetch(`${api}/admin/webhook-events/${hostile.id}/replay`, { method: "POST", headers: await admin() });
      expect(replay.status).toBe(202);
      await syncStripe(a.officeId);
      expect(await eventRow(hostile.id)).toMatchObject({ status: "rejected", error: "binding_mismatch" });
    }
    await syncStripe(b.officeId);
    expect(await invoice(b.setup.id)).toMatchObject({ status: "open", amountPaid: 0, stripeState: "finalized" });
    expect(await invoice(a.setup.id)).toMatchObject({ status: "open", amountPaid: 0, stripeState: "finalized" });
    const logged = errorLines(errors).filter((l) => l.level === "error" && /metadata disagrees/.test(String(l.msg)));
    expect(logged.length).toBeGreaterThanOrEqual(2);
    // The listing shows them by their status.
    const listed = (await (await SELF.fetch(`${api}/admin/webhook-events?officeId=${a.officeId}&status=rejected`, { headers: await admin() })).json()) as { data: { id: string; error: string }[] };
    expect(listed.data).toHaveLength(2);
    expect(listed.data.every((e) => e.error === "binding_mismatch")).toBe(true);
  });

  it("the right office but another invoice's reference (invoice_ref), or another office's customer, is refused; an unknown Stripe id with our references applies nothing", async () => {
    const [a, b] = await Promise.all([pushedOffice({ decline: true }), pushedOffice({ decline: true })]);
    const draft = (await invoiceRows(a.officeId)).find((i) => i.status === "draft");
    // A's own Stripe invoice, naming another invoice of A.
    const other = draft?.id ?? `inv_${"0".repeat(32)}`;
    const wrongRef = stripeEvent("invoice.paid", invoiceObject({ stripeId: a.stripeId, customer: a.customerId, officeId: a.officeId, invoiceId: other, status: "paid", amount: 6_300 }));
    expect(await (await deliver(wrongRef)).json()).toMatchObject({ status: "rejected" });
    expect(await eventRow(wrongRef.id)).toMatchObject({ status: "rejected", error: "binding_mismatch" });
    // A's Stripe invoice with B's Stripe customer: the two stored ids disagree.
    const crossCustomer = stripeEvent("invoice.paid", invoiceObject({ stripeId: a.stripeId, customer: b.customerId, officeId: a.officeId, invoiceId: a.setup.id, status: "paid", amount: 6_300 }));
    expect(await (await deliver(crossCustomer)).json()).toMatchObject({ status: "rejected" });
    expect(await eventRow(crossCustomer.id)).toMatchObject({ status: "rejected", error: "binding_mismatch", officeId: a.officeId });
    // A Stripe id we never recorded, with A's references: metadata alone finds nothing.
    const unknown = stripeEvent("invoice.paid", invoiceObject({ stripeId: "in_forged0000000000000001", customer: "cus_forged00001", officeId: a.officeId, invoiceId: a.setup.id, status: "paid", amount: 6_300 }));
    expect(await (await deliver(unknown)).json()).toMatchObject({ status: "ignored" });
    expect(await eventRow(unknown.id)).toMatchObject({ status: "ignored", error: "office_unknown", officeId: null });
    await syncStripe(a.officeId);
    await syncStripe(b.officeId);
    expect(await invoice(a.setup.id)).toMatchObject({ status: "open", amountPaid: 0 });
    expect(await invoice(b.setup.id)).toMatchObject({ status: "open", amountPaid: 0 });
  });

  it("an event naming the office's current draft (never sent to Stripe) never touches it", async () => {
    const a = await pushedOffice({ decline: true });
    const draft = (await invoiceRows(a.officeId)).find((i) => i.status === "draft" && i.kind === "monthly")!;
    expect(draft).toBeDefined();
    // Through the office's real customer (so the office is found), an unknown invoice id and the draft's references.
    const viaCustomer = stripeEvent("invoice.paid", { ...invoiceObject({ stripeId: "in_forgeddraft00000000001", customer: a.customerId, officeId: a.officeId, invoiceId: draft.id, status: "paid", amount: 999_999 }), amount_paid: 999_999 });
    expect(await (await deliver(viaCustomer)).json()).toMatchObject({ status: "received" });
    await syncStripe(a.officeId);
    expect(await eventRow(viaCustomer.id)).toMatchObject({ status: "ignored", error: "invoice_unknown" });
    const after = await invoice(draft.id);
    expect(after).toMatchObject({ status: "draft", amountPaid: 0, stripeState: "none" });
    // The office still has its current cycle: a one-off charge is still accepted (not 409).
    const charge = await SELF.fetch(`${api}/offices/${a.officeId}/charges`, { method: "POST", headers: { ...(await admin()), "idempotency-key": crypto.randomUUID() }, body: JSON.stringify({ amount: 1_500, category: "training", mode: "add_to_current" }) });
    expect(charge.status, await charge.clone().text()).toBe(201);
    expect(((await charge.json()) as { invoiceId: string }).invoiceId).toBe(draft.id);
    // The rules themselves: nothing Stripe reports moves a draft.
    for (const reported of ["open", "paid", "void", "uncollectible"] as const) expect(decide("draft", reported).kind).toBe("none");
  });

  it("an inflated invoice.paid amount is not believed: Stripe's invoice is read (declined: stays open; collected: its own amount, never above our total)", async () => {
    const [declined, collected] = await Promise.all([pushedOffice({ decline: true }), pushedOffice()]);
    const errors = vi.spyOn(console, "error");
    for (const o of [declined, collected]) {
      const inflated = stripeEvent("invoice.paid", { ...invoiceObject({ stripeId: o.stripeId, customer: o.customerId, officeId: o.officeId, invoiceId: o.setup.id, status: "paid", amount: 6_300 }), amount_paid: 999_999 });
      expect(await (await deliver(inflated)).json()).toMatchObject({ status: "received" });
      await syncStripe(o.officeId);
      expect(await eventRow(inflated.id)).toMatchObject({ status: "processed" });
    }
    expect(await invoice(declined.setup.id)).toMatchObject({ status: "open", amountPaid: 0 });
    expect(await invoice(collected.setup.id)).toMatchObject({ status: "paid", amountPaid: 6_300 });
    expect(errorLines(errors).filter((l) => /payment outside the invoice's total/.test(String(l.msg)))).toHaveLength(2);
    expect((await stripeLog(declined.officeId)).some((r) => r.operation === "readInvoice")).toBe(true);
  });

  it("charge.refunded: another office's references are refused, an inflated amount is not applied (Stripe's refunds of the charge are read)", async () => {
    const [a, b] = await Promise.all([pushedOffice(), pushedOffice()]);
    // Both paid here by Stripe's own events.
    for (const o of [a, b]) {
      for (const e of (await emulatorEvents(o.setup.id)).filter((e) => e.type === "invoice.paid")) await deliver(e);
      await syncStripe(o.officeId);
      expect(await invoice(o.setup.id)).toMatchObject({ status: "paid", amountPaid: 6_300, amountRefunded: 0 });
    }
    const chargeA = (await chargeOfInvoice(a.stripeId)) as unknown as Record<string, unknown>;
    // A's charge, its refund list naming B's invoice.
    const crossed = stripeEvent("charge.refunded", {
      ...fixtures.charge,
      ...chargeA,
      amount_refunded: 6_300,
      refunds: { object: "list", data: [{ ...fixtures.refund, id: "re_forged00000001", amount: 6_300, metadata: { invoice_ref: b.setup.id } }], has_more: false, total_count: 1 },
    });
    expect(await (await deliver(crossed)).json()).toMatchObject({ status: "received" });
    await syncStripe(a.officeId);
    expect(await eventRow(crossed.id)).toMatchObject({ status: "rejected", error: "binding_mismatch" });
    // Without a payment intent (the way to the charge's invoice), only refunds of ours could bind it: none here, so nothing is applied.
    const unbound = stripeEvent("charge.refunded", { ...crossed.data.object, payment_intent: null });
    await deliver(unbound);
    await syncStripe(a.officeId);
    expect(await eventRow(unbound.id)).toMatchObject({ status: "ignored", error: "invoice_unknown" });
    // A's own charge with an inflated refund: Stripe's charge says nothing was refunded.
    const inflated = stripeEvent("charge.refunded", { ...fixtures.charge, ...chargeA, amount_refunded: 999_999 });
    await deliver(inflated);
    await syncStripe(a.officeId);
    expect(await eventRow(inflated.id)).toMatchObject({ status: "processed" });
    expect((await stripeLog(a.officeId)).some((r) => r.operation === "readRefund")).toBe(true);
    for (const o of [a, b]) expect(await invoice(o.setup.id)).toMatchObject({ status: "paid", amountPaid: 6_300, amountRefunded: 0 });
  });
});

describe("reconciliation compares every pushed invoice with Stripe and repairs ours", () => {
  const reconcile = async (officeId: string) => {
    const res = await SELF.fetch(`${api}/admin/reconciliation-runs`, { method: "POST", headers: await admin(), body: JSON.stringify({ officeIds: [officeId] }) });
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as { checked: number; changed: { invoiceId: string; from: string; to: string }[]; failed: unknown[] };
  };

  it("an invoice wrongly made paid or void here (Stripe: open) is set back to open; a wrong paid amount to Stripe's; each audited", async () => {
    const [open1, open2, collected] = await Promise.all([pushedOffice({ decline: true }), pushedOffice({ decline: true }), pushedOffice()]);
    // What the old binding did: paid with 999,999, and voided as if Stripe had voided it.
    await testDb().update(invoices).set({ status: "paid", amountPaid: 999_999, paidAt: Date.now() }).where(eq(invoices.id, open1.setup.id));
    await testDb().update(invoices).set({ status: "void", stripeState: "voided", voidedAt: Date.now() }).where(eq(invoices.id, open2.setup.id));
    // Paid on Stripe (6,300) but recorded here with another amount.
    await testDb().update(invoices).set({ status: "paid", amountPaid: 5_000, paidAt: Date.now() }).where(eq(invoices.id, collected.setup.id));
    const errors = vi.spyOn(console, "error");
    const r1 = await reconcile(open1.officeId);
    expect(r1.changed).toEqual([{ officeId: open1.officeId, invoiceId: open1.setup.id, from: "paid", to: "open" }]);
    expect(await invoice(open1.setup.id)).toMatchObject({ status: "open", amountPaid: 0, paidAt: null, stripeState: "finalized" });
    const r2 = await reconcile(open2.officeId);
    expect(r2.changed).toEqual([{ officeId: open2.officeId, invoiceId: open2.setup.id, from: "void", to: "open" }]);
    expect(await invoice(open2.setup.id)).toMatchObject({ status: "open", voidedAt: null, stripeState: "finalized" });
    const r3 = await reconcile(collected.officeId);
    expect(r3.checked).toBe(1);
    expect(await invoice(collected.setup.id)).toMatchObject({ status: "paid", amountPaid: 6_300 });
    for (const o of [open1, open2, collected]) {
      const [entry] = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, o.officeId), eq(auditLog.action, "stripe.reconciled")));
      expect(entry!.details).toMatchObject({ contradiction: true });
    }
    expect(errorLines(errors).filter((l) => /contradicted Stripe/.test(String(l.msg)))).toHaveLength(3);
    // Settled and found agreeing: the next run reads only what is still open.
    expect((await reconcile(collected.officeId)).checked).toBe(0);
    expect(await reconcile(open1.officeId)).toMatchObject({ checked: 1, changed: [] });
  });
});
