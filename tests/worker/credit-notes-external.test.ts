// Credit notes made outside this API (Stripe's Dashboard) on an invoice we pushed (docs/payment-plan.md
// §8.10): read from Stripe on their event, recorded as ours with Stripe's amounts (`source: stripe`)
// once their invoice is ours by the Stripe invoice id we stored, never their free-text memo; counted
// in the invoice's credited amount and the bounds; a void follows; an open invoice brought to 0 is paid.
import { env, SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { newId } from "../../src/security/request-id";
import { creditNotes } from "../../src/db/credit-notes";
import { webhookEvents } from "../../src/db/webhook-events";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";
import { pushedOffice, stripeObject, syncStripe, until } from "../harness/stripe";
import { deliver, emulatorEvents, stripeEvent } from "../harness/webhooks";

const api = "https://billing.test/v1";
const admin = async () => ({ ...bearer(await mintToken("platform_admin")), "content-type": "application/json" });

type Note = { id: string; amount: number; status: string; settlement: string; reason: string | null; memo: string | null; source: string; lines: unknown };
type InvoiceRead = { status: string; amountPaid: number; amountCredited: number; amountDue: number; creditNotes: Note[] };
async function read(officeId: string, invoiceId: string): Promise<InvoiceRead> {
  const res = await SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}`, { headers: await admin() });
  expect(res.status).toBe(200);
  return (await res.json()) as InvoiceRead;
}

/** A credit note made at Stripe directly, as the Dashboard makes one (free-text memo, no metadata of ours). */
async function dashboardCreditNote(body: Record<string, string>): Promise<Stripe.CreditNote> {
  const res = await fetch(new URL("/v1/credit_notes", env.STRIPE_API_BASE!), {
    method: "POST",
    headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(body).toString(),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Stripe.CreditNote;
}

const eventOf = (stripeId: string, type: string) => until(type, async () => (await emulatorEvents(stripeId)).find((e) => e.type === type));
const eventRow = async (id: string) => (await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, id)))[0];

describe("credit notes made in Stripe's Dashboard (§8.10)", () => {
  it("are recorded as ours with Stripe's amounts, no memo; counted in the bounds; a void follows; one to 0 makes the invoice paid", async () => {
    const { officeId, setup, stripeId } = await pushedOffice({ decline: true, attempted: true });
    const made = await dashboardCreditNote({ invoice: stripeId, amount: "2000", reason: "order_change", memo: "Sorry about March" });
    const created = await eventOf(made.id, "credit_note.created");
    expect((await deliver(created)).status).toBe(200);
    await syncStripe(officeId);
    expect(await eventRow(created.id)).toMatchObject({ status: "processed" });
    const invoice = await read(officeId, setup.id);
    expect(invoice).toMatchObject({ status: "open", amountCredited: 2_000, amountDue: 23_000 });
    expect(invoice.creditNotes).toEqual([expect.objectContaining({ amount: 2_000, status: "issued", settlement: "none", reason: "order_change", memo: null, source: "stripe", lines: null })]);
    expect(await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`)).toMatchObject({ amount_due: 23_000 });
    // Stripe's id sealed with its keyed index; its memo kept nowhere.
    const rows = await testDb().select().from(creditNotes).where(eq(creditNotes.invoiceId, setup.id));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.stripeCreditNoteRef).not.toMatch(/^cn_/);
    expect(JSON.stringify(rows)).not.toMatch(/Sorry/);
    const audits = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "credit_note.recorded_from_stripe")));
    expect(audits.map((a) => a.details)).toEqual([{ amount: 2_000, settlement: "none", stripeStatus: "issued", prePaymentAmount: 2_000, postPaymentAmount: 0 }]);
    expect(JSON.stringify(audits)).not.toMatch(/Sorry/);

    // The same event again (a retried delivery, as a new event id): bound to the one recorded, nothing twice.
    const again = stripeEvent("credit_note.updated", { ...created.data.object });
    expect((await deliver(again)).status).toBe(200);
    await syncStripe(officeId);
    expect(await eventRow(again.id)).toMatchObject({ status: "processed" });
    expect(await testDb().select().from(creditNotes).where(eq(creditNotes.invoiceId, setup.id))).toHaveLength(1);

    // It counts in the bound of ours: at most 23,000 left.
    const over = await SELF.fetch(`${api}/offices/${officeId}/invoices/${setup.id}/credit-notes`, { method: "POST", headers: await admin(), body: JSON.stringify({ amount: 23_001, reason: "order_change", memo: "service_credit" }) });
    await expectProblem(over, 409, "CONFLICT");

    // Voided in the Dashboard: ours follows, the amount is due again.
    const voidRes = await fetch(new URL(`/v1/credit_notes/${made.id}/void`, env.STRIPE_API_BASE!), { method: "POST", headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}` } });
    expect(voidRes.status).toBe(200);
    expect((await deliver(await eventOf(made.id, "credit_note.voided"))).status).toBe(200);
    await syncStripe(officeId);
    expect(await read(officeId, setup.id)).toMatchObject({ status: "open", amountCredited: 0, amountDue: 25_000, creditNotes: [{ source: "stripe", status: "void" }] });

    // A Dashboard credit note of all that is due: Stripe marks the invoice paid, and so do we (amount paid 0).
    const whole = await dashboardCreditNote({ invoice: stripeId, amount: "25000" });
    expect((await deliver(await eventOf(whole.id, "credit_note.created"))).status).toBe(200);
    await syncStripe(officeId);
    const settled = await read(officeId, setup.id);
    expect(settled).toMatchObject({ status: "paid", amountPaid: 0, amountCredited: 25_000, amountDue: 0 });
    expect(settled.creditNotes.find((n) => n.amount === 25_000)).toMatchObject({ source: "stripe", reason: null, status: "issued" });
  });

  it("one whose event never reached us is found by the reconciliation (Stripe credited more than ours account for) and recorded the same way", async () => {
    const { officeId, setup, stripeId } = await pushedOffice({ decline: true, attempted: true });
    await dashboardCreditNote({ invoice: stripeId, amount: "3000", reason: "duplicate" });
    // No event delivered. The daily reconciliation compares the invoice with Stripe's.
    const run = async () => {
      const res = await SELF.fetch(`${api}/admin/reconciliation-runs`, { method: "POST", headers: await admin(), body: JSON.stringify({ officeIds: [officeId] }) });
      expect(res.status, await res.clone().text()).toBe(200);
      return (await res.json()) as { checked: number; failed: unknown[] };
    };
    expect(await run()).toMatchObject({ failed: [] });
    expect(await read(officeId, setup.id)).toMatchObject({ status: "open", amountCredited: 3_000, amountDue: 22_000, creditNotes: [{ amount: 3_000, source: "stripe", reason: "duplicate", memo: null }] });
    // Another run: it agrees now, nothing recorded twice.
    expect(await run()).toMatchObject({ failed: [] });
    expect(await testDb().select().from(creditNotes).where(eq(creditNotes.invoiceId, setup.id))).toHaveLength(1);
    const audits = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "credit_note.recorded_from_stripe")));
    expect(audits).toHaveLength(1);
  });

  it("one naming our own credit note in its metadata (made by our outbox, its answer lost) is left to the outbox: never recorded twice", async () => {
    const { officeId, setup, stripeId } = await pushedOffice({ decline: true, attempted: true });
    // Our credit note, recorded pending (as when Stripe's answer to its create was lost).
    const ours = newId("cn");
    await testDb().insert(creditNotes).values({ id: ours, officeId, invoiceId: setup.id, amount: 1_000, reason: "order_change", memo: "goodwill", settlement: "none", status: "pending", requestedBy: "test", updatedAt: Date.now() });
    const made = await dashboardCreditNote({ invoice: stripeId, amount: "1000", reason: "order_change", memo: "Goodwill credit", "metadata[credit_note_ref]": ours, "metadata[invoice_ref]": setup.id });
    const created = await eventOf(made.id, "credit_note.created");
    expect((await deliver(created)).status).toBe(200);
    await syncStripe(officeId);
    expect(await eventRow(created.id)).toMatchObject({ status: "ignored", error: "credit_note_pending_ours" });
    const rows = await testDb().select().from(creditNotes).where(eq(creditNotes.invoiceId, setup.id));
    expect(rows.filter((r) => r.source === "stripe")).toEqual([]);
  });

  it("one on an invoice that is not this office's binds nothing: ignored", async () => {
    const mine = await pushedOffice({ decline: true, attempted: true });
    const other = await pushedOffice({ decline: true, attempted: true });
    const made = await dashboardCreditNote({ invoice: other.stripeId, amount: "1000" });
    const created = await eventOf(made.id, "credit_note.created");
    // Delivered to the other office's invoice it binds there; forged to name ours (an invoice id of the
    // other's, our office's hint), it records nothing on ours.
    const forged = stripeEvent("credit_note.created", { ...created.data.object, metadata: { office_ref: mine.officeId } });
    const r = await deliver(forged);
    expect(r.status, await r.clone().text()).toBe(200);
    await syncStripe(mine.officeId);
    await syncStripe(other.officeId);
    expect(await testDb().select().from(creditNotes).where(eq(creditNotes.invoiceId, mine.setup.id))).toEqual([]);
    expect((await eventRow(forged.id))?.status).not.toBe("processed");
  });
});
