// Credit notes (docs/payment-plan.md §8.10) through the API against the local stack: on an open
// invoice the amount due goes down (to 0: paid), on a paid one the credit is refunded or put on
// the customer's Stripe balance; bounded; created on Stripe once (key credit_note_<id>), also
// after Stripe was out of reach; credit_note.* events bound only by the Stripe id we stored.
import { env, SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { creditNotes } from "../../src/db/credit-notes";
import { invoiceLines } from "../../src/db/invoices";
import { webhookEvents } from "../../src/db/webhook-events";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";
import { monthlyInvoices, onboardOffice, runInvoicing } from "../harness/billing";
import { clearFaultRule, emulatorLog, faultRule, pushedOffice, stripeLog, stripeObject, syncStripe, until, untilStripeAttempted } from "../harness/stripe";
import { deliver, emulatorEvents, stripeEvent } from "../harness/webhooks";

const api = "https://billing.test/v1";
const headers = async (role: "platform_admin" | "office_admin" | "office_viewer" | "clinical_system" = "platform_admin", officeIds: string[] = []) => ({
  ...bearer(await mintToken(role, officeIds)),
  "content-type": "application/json",
});

const credit = async (officeId: string, invoiceId: string, body: unknown, h?: Record<string, string>) =>
  SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}/credit-notes`, { method: "POST", headers: h ?? (await headers()), body: JSON.stringify(body) });

type CreditNoteView = { id: string; amount: number; status: string; settlement: string; reason: string; memo: string; lines: { lineId: string; amount: number }[] | null; creditable: number };
type InvoiceRead = { status: string; total: number; amountPaid: number; amountRefunded: number; amountCredited: number; amountDue: number; creditNotes: CreditNoteView[]; refunds: { amount: number; status: string }[] };
async function read(officeId: string, invoiceId: string): Promise<InvoiceRead> {
  const res = await SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}`, { headers: await headers() });
  expect(res.status).toBe(200);
  return (await res.json()) as InvoiceRead;
}

const creditNoteRequests = async (id: string) => (await emulatorLog()).filter((r) => r.method === "POST" && r.path === "/v1/credit_notes" && r.idempotencyKey === `credit_note_${id}` && r.status === 200);
const audits = (officeId: string, action: string) => testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, action)));

/** An office whose 25,000 setup invoice is open on Stripe (its card was declined). */
const openOffice = () => pushedOffice({ decline: true, attempted: true });
/** An office whose 25,000 setup invoice Stripe collected. */
async function paidOffice() {
  const o = await pushedOffice({});
  await untilStripeAttempted(o.setup.id);
  await until("the setup invoice paid on Stripe", async () => (await stripeObject<Stripe.Invoice>(`/v1/invoices/${o.stripeId}`)).status === "paid");
  return o;
}

describe("credit notes on an open invoice", () => {
  it("lower the amount due, by amount and by line; the last one to 0 makes the invoice paid, as Stripe does", async () => {
    const { officeId, setup, stripeId } = await openOffice();
    const res = await credit(officeId, setup.id, { amount: 5_000, reason: "order_change", memo: "service_credit" });
    expect(res.status, await res.clone().text()).toBe(201);
    const first = (await res.json()) as CreditNoteView;
    expect(first).toMatchObject({ amount: 5_000, status: "issued", settlement: "none", reason: "order_change", memo: "service_credit", lines: null, creditable: 20_000 });
    expect(await read(officeId, setup.id)).toMatchObject({ status: "open", amountCredited: 5_000, amountDue: 20_000, creditNotes: [{ id: first.id, status: "issued" }] });
    expect(await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`)).toMatchObject({ status: "open", amount_due: 20_000, amount_remaining: 20_000 });
    // Once on Stripe, with our fixed memo and Stripe's reason; never again from the outbox.
    const [sent] = await creditNoteRequests(first.id);
    expect(new URLSearchParams(sent!.body).get("memo")).toBe("Service credit");
    expect(new URLSearchParams(sent!.body).get("reason")).toBe("order_change");
    await syncStripe(officeId);
    expect(await creditNoteRequests(first.id)).toHaveLength(1);
    // The stored Stripe id is sealed, never in clear.
    const [row] = await testDb().select().from(creditNotes).where(eq(creditNotes.id, first.id));
    expect(row!.stripeCreditNoteRef).not.toMatch(/^cn_/);
    expect(row!.stripeCreditNoteIndex).toMatch(/^[0-9a-f]{64}$/);

    // Over the bound: 409, nothing recorded or sent.
    await expectProblem(await credit(officeId, setup.id, { amount: 20_001, reason: "order_change", memo: "service_credit" }), 409, "CONFLICT");
    // Leaving less than Stripe's minimum charge (usd 50) due: refused.
    const tooLittleLeft = await expectProblem(await credit(officeId, setup.id, { amount: 19_951, reason: "order_change", memo: "service_credit" }), 409, "CONFLICT");
    expect(tooLittleLeft.detail).toMatch(/minimum charge/);
    // Two at once beyond what is left: the office's object takes one, refuses the other.
    const both = await Promise.all([1, 2].map(() => credit(officeId, setup.id, { amount: 15_000, reason: "order_change", memo: "service_credit" })));
    expect(both.map((r) => r.status).sort()).toEqual([201, 409]);
    const one = ((await Promise.all(both.map((r) => r.json()))) as { status?: string }[]).find((b) => b.status === "issued") as CreditNoteView;
    const [line] = await testDb().select().from(invoiceLines).where(eq(invoiceLines.invoiceId, setup.id));
    // By line: the setup fee line still has 25,000 of its own, but the invoice only 5,000 left.
    await expectProblem(await credit(officeId, setup.id, { lines: [{ lineId: line!.id, amount: 5_001 }], reason: "duplicate", memo: "billing_error" }), 409, "CONFLICT");
    const byLine = await credit(officeId, setup.id, { lines: [{ lineId: line!.id, amount: 5_000 }], reason: "duplicate", memo: "billing_error" });
    expect(byLine.status, await byLine.clone().text()).toBe(201);
    expect(await byLine.json()).toMatchObject({ amount: 5_000, lines: [{ lineId: line!.id, amount: 5_000 }], creditable: 0 });
    expect(one.amount).toBe(15_000);
    expect(await read(officeId, setup.id)).toMatchObject({ status: "paid", amountPaid: 0, amountCredited: 25_000, amountDue: 0 });
    expect(await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`)).toMatchObject({ status: "paid", amount_due: 0 });
    expect((await audits(officeId, "credit_note.requested")).map((a) => a.details)).toHaveLength(3);
    expect(await audits(officeId, "credit_note.issued")).toHaveLength(3);
    expect((await audits(officeId, "invoice.paid")).some((a) => (a.details as { source?: string }).source === "credit_note")).toBe(true);
    await expectProblem(await credit(officeId, setup.id, { amount: 1, reason: "order_change", memo: "service_credit", settlement: "refund" }), 409, "CONFLICT");
  });

  it("Stripe out of reach: 202 pending, then created once by the outbox", async () => {
    const { officeId, setup } = await openOffice();
    // Only this invoice's credit note (its body names our invoice): other files share the emulator.
    await faultRule(setup.id, ["500"], 3);
    try {
      const res = await credit(officeId, setup.id, { amount: 1_000, reason: "product_unsatisfactory", memo: "goodwill" });
      expect(res.status, await res.clone().text()).toBe(202);
      const note = (await res.json()) as CreditNoteView;
      expect(note.status).toBe("pending");
      expect(await read(officeId, setup.id)).toMatchObject({ amountCredited: 1_000, amountDue: 24_000 });
      await clearFaultRule(setup.id);
      await until("the credit note issued by the outbox", async () => {
        await syncStripe(officeId);
        const [row] = await testDb().select().from(creditNotes).where(eq(creditNotes.id, note.id));
        return row!.status === "issued";
      });
      expect(await creditNoteRequests(note.id)).toHaveLength(1);
      expect(await read(officeId, setup.id)).toMatchObject({ amountCredited: 1_000, creditNotes: [{ id: note.id, status: "issued" }] });
    } finally {
      await clearFaultRule(setup.id);
    }
  });
});

describe("credit notes by line on Stripe (§8.10)", () => {
  it("go to Stripe line by line: Stripe's own line ids, read back from the invoice we stored, each with its amount; bounded per line", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01", plan: { baseFee: 4_900 } });
    const charge = await SELF.fetch(`${api}/offices/${officeId}/charges`, { method: "POST", headers: await headers(), body: JSON.stringify({ amount: 1_000, category: "training", mode: "add_to_current" }) });
    expect(charge.status, await charge.clone().text()).toBe(201);
    await runInvoicing([officeId], "2026-10-01T06:00:00Z");
    await syncStripe(officeId);
    const [sep] = await monthlyInvoices(officeId);
    const fee = sep!.lines.find((l) => l.description === "Platform fee — Sep 2026")!;
    const training = sep!.lines.find((l) => l.description === "Training")!;
    const stripeId = (await stripeLog(officeId)).find((r) => r.idempotencyKey === `invoice_${sep!.id}_create`)!.stripeIds![0]!;
    const stripeLines = (await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`)).lines.data;
    const stripeLineOf = (ours: string) => stripeLines.find((l) => l.metadata?.line_ref === ours)!.id;

    const res = await credit(officeId, sep!.id, { lines: [{ lineId: fee.id, amount: 900 }, { lineId: training.id, amount: 400 }], reason: "product_unsatisfactory", memo: "billing_error" });
    expect(res.status, await res.clone().text()).toBe(201);
    const note = (await res.json()) as CreditNoteView;
    expect(note).toMatchObject({ amount: 1_300, status: "issued", lines: [{ lineId: fee.id, amount: 900 }, { lineId: training.id, amount: 400 }] });
    // Sent by line: Stripe's ids (never ours), no whole amount.
    const [sent] = await creditNoteRequests(note.id);
    const form = new URLSearchParams(sent!.body);
    expect([...form.keys()].filter((k) => k.startsWith("lines") || k === "amount")).toEqual([
      "lines[0][type]",
      "lines[0][invoice_line_item]",
      "lines[0][amount]",
      "lines[1][type]",
      "lines[1][invoice_line_item]",
      "lines[1][amount]",
    ]);
    expect([form.get("lines[0][invoice_line_item]"), form.get("lines[1][invoice_line_item]")]).toEqual([stripeLineOf(fee.id), stripeLineOf(training.id)]);
    // Stripe's credit note has those lines; its invoice is due what ours is.
    const notes = await stripeObject<Stripe.ApiList<Stripe.CreditNote>>(`/v1/credit_notes?invoice=${stripeId}`);
    expect(notes.data.map((n) => [n.amount, n.lines.data.map((l) => [l.type, l.invoice_line_item, l.amount])])).toEqual([
      [1_300, [["invoice_line_item", stripeLineOf(fee.id), 900], ["invoice_line_item", stripeLineOf(training.id), 400]]],
    ]);
    expect(await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`)).toMatchObject({ amount_due: 4_600 });
    expect(await read(officeId, sep!.id)).toMatchObject({ amountCredited: 1_300, amountDue: 4_600 });
    // Per line bound: the training line has 600 left.
    await expectProblem(await credit(officeId, sep!.id, { lines: [{ lineId: training.id, amount: 601 }], reason: "order_change", memo: "billing_error" }), 409, "CONFLICT");
    const rest = await credit(officeId, sep!.id, { lines: [{ lineId: training.id, amount: 600 }], reason: "order_change", memo: "billing_error" });
    expect(rest.status, await rest.clone().text()).toBe(201);
    expect(await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`)).toMatchObject({ amount_due: 4_000 });
    // What Stripe refuses, the emulator refuses: more than a line has left.
    const over = await fetch(new URL("/v1/credit_notes", env.STRIPE_API_BASE!), {
      method: "POST",
      headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ invoice: stripeId, "lines[0][type]": "invoice_line_item", "lines[0][invoice_line_item]": stripeLineOf(training.id), "lines[0][amount]": "1" }).toString(),
    });
    expect(over.status).toBe(400);
    expect(((await over.json()) as { error: { param: string } }).error.param).toBe("lines[0][amount]");
  });
});

describe("credit notes on a paid invoice", () => {
  it("refunded or credited to the customer's balance, as chosen; bounded by what was paid less refunds and credits", async () => {
    const { officeId, setup, customerId } = await paidOffice();
    await expectProblem(await credit(officeId, setup.id, { amount: 5_000, reason: "duplicate", memo: "duplicate_charge" }), 409, "CONFLICT");
    const refunded = await credit(officeId, setup.id, { amount: 5_000, reason: "duplicate", memo: "duplicate_charge", settlement: "refund" });
    expect(refunded.status, await refunded.clone().text()).toBe(201);
    expect(await refunded.json()).toMatchObject({ settlement: "refund", status: "issued", creditable: 20_000 });
    const balance = await credit(officeId, setup.id, { amount: 4_000, reason: "order_change", memo: "goodwill", settlement: "customer_balance" });
    expect(balance.status, await balance.clone().text()).toBe(201);
    expect(await balance.json()).toMatchObject({ settlement: "customer_balance", creditable: 16_000 });
    expect(await stripeObject<Stripe.Customer>(`/v1/customers/${customerId}`)).toMatchObject({ balance: -4_000 });
    const invoice = await read(officeId, setup.id);
    expect(invoice).toMatchObject({ status: "paid", amountPaid: 25_000, amountRefunded: 5_000, amountCredited: 9_000, amountDue: 0 });
    expect(invoice.refunds).toMatchObject([{ amount: 5_000 }]);
    await expectProblem(await credit(officeId, setup.id, { amount: 16_001, reason: "order_change", memo: "goodwill", settlement: "customer_balance" }), 409, "CONFLICT");
    expect(await audits(officeId, "refund.recorded_from_credit_note")).toHaveLength(1);
  });
});

describe("refused requests", () => {
  it("bad bodies → 400 problem+json; a line not of the invoice → 422; no such invoice → 404; a void invoice → 409", async () => {
    const { officeId, setup } = await openOffice();
    for (const body of [
      { reason: "order_change", memo: "service_credit" }, // neither amount nor lines
      { amount: 100, lines: [{ lineId: `il_${"0".repeat(32)}`, amount: 1 }], reason: "order_change", memo: "service_credit" }, // both
      { amount: 100, reason: "requested_by_customer", memo: "service_credit" }, // not Stripe's reason
      { amount: 100, reason: "order_change", memo: "Patient Jane Doe was overbilled" }, // free text
      { amount: 0, reason: "order_change", memo: "service_credit" },
      { amount: 10.5, reason: "order_change", memo: "service_credit" },
      { amount: 100, reason: "order_change", memo: "service_credit", note: "x" }, // unknown field
      { amount: 100, reason: "order_change", memo: "service_credit", settlement: "out_of_band" },
    ]) {
      const res = await credit(officeId, setup.id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    }
    await expectProblem(await credit(officeId, setup.id, { lines: [{ lineId: `il_${"a".repeat(32)}`, amount: 1 }], reason: "order_change", memo: "service_credit" }), 422, "UNPROCESSABLE");
    await expectProblem(await credit(officeId, `inv_${"b".repeat(32)}`, { amount: 1, reason: "order_change", memo: "service_credit" }), 404, "NOT_FOUND");
    expect((await SELF.fetch(`${api}/offices/${officeId}/invoices/${setup.id}/void`, { method: "POST", headers: await headers() })).status).toBe(200);
    await expectProblem(await credit(officeId, setup.id, { amount: 1, reason: "order_change", memo: "service_credit" }), 409, "CONFLICT");
    expect(await testDb().select().from(creditNotes).where(eq(creditNotes.invoiceId, setup.id))).toEqual([]);
    // The refusals that reached the office are on its chain (the line, the void invoice).
    expect((await audits(officeId, "credit_note.request")).filter((a) => a.outcome === "failed")).toHaveLength(2);
  });

  it("only platform_admin: office roles 403 on their own office, 404 on another's; no token 401", async () => {
    const { officeId, setup } = await openOffice();
    const body = { amount: 100, reason: "order_change", memo: "service_credit" };
    await expectProblem(await credit(officeId, setup.id, body, await headers("office_admin", [officeId])), 403, "FORBIDDEN");
    await expectProblem(await credit(officeId, setup.id, body, await headers("office_viewer", [officeId])), 403, "FORBIDDEN");
    await expectProblem(await credit(officeId, setup.id, body, await headers("clinical_system", [officeId])), 403, "FORBIDDEN");
    await expectProblem(await credit(officeId, setup.id, body, await headers("office_admin", [`off_${"c".repeat(32)}`])), 404, "NOT_FOUND");
    const anon = await SELF.fetch(`${api}/offices/${officeId}/invoices/${setup.id}/credit-notes`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(anon.status).toBe(401);
    expect(await testDb().select().from(creditNotes).where(eq(creditNotes.invoiceId, setup.id))).toEqual([]);
  });
});

describe("credit_note.* events", () => {
  it("a void on Stripe (credit_note.voided) voids ours and gives the amount due back; forged metadata is rejected; an id we never stored binds nothing", async () => {
    const { officeId, setup } = await openOffice();
    const res = await credit(officeId, setup.id, { amount: 3_000, reason: "order_change", memo: "plan_change" });
    expect(res.status).toBe(201);
    const note = (await res.json()) as CreditNoteView;
    const created = await until("credit_note.created", async () => (await emulatorEvents(note.id)).find((e) => e.type === "credit_note.created"));
    const stripeCnId = String(created.data.object.id);
    // created: ours already issued, nothing moves.
    expect((await deliver(created)).status).toBe(200);
    await syncStripe(officeId);
    expect((await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, created.id)))[0]).toMatchObject({ status: "processed" });

    // A forged event naming our credit note with another invoice in its metadata: rejected.
    const forged = stripeEvent("credit_note.voided", { ...created.data.object, status: "void", metadata: { ...(created.data.object.metadata as object), invoice_ref: `inv_${"d".repeat(32)}` } });
    expect((await deliver(forged)).status).toBe(200);
    await syncStripe(officeId);
    expect((await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, forged.id)))[0]).toMatchObject({ status: "rejected", error: "binding_mismatch" });
    expect((await read(officeId, setup.id)).creditNotes[0]).toMatchObject({ status: "issued" });
    // A credit note id we never stored and Stripe does not have: read from Stripe first, nothing.
    const unknown = stripeEvent("credit_note.voided", { ...created.data.object, id: "cn_neverstored0001", metadata: {} });
    expect((await deliver(unknown)).status).toBe(200);
    await syncStripe(officeId);
    expect((await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, unknown.id)))[0]).toMatchObject({ status: "ignored", error: "unknown_at_stripe" });

    // Voided on Stripe (as in the Dashboard): the event is a hint, Stripe's credit note says void.
    const voidRes = await fetch(new URL(`/v1/credit_notes/${stripeCnId}/void`, env.STRIPE_API_BASE!), {
      method: "POST",
      headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}` },
    });
    expect(voidRes.status).toBe(200);
    const voided = await until("credit_note.voided", async () => (await emulatorEvents(stripeCnId)).find((e) => e.type === "credit_note.voided"));
    expect((await deliver(voided)).status).toBe(200);
    await syncStripe(officeId);
    expect(await read(officeId, setup.id)).toMatchObject({ status: "open", amountCredited: 0, amountDue: 25_000, creditNotes: [{ id: note.id, status: "void" }] });
    expect(await audits(officeId, "credit_note.voided")).toHaveLength(1);
  });
});
