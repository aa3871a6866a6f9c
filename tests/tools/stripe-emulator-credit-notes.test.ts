// The emulator's credit notes (docs/payment-plan.md §8.10), through the real `stripe` package:
// on an open invoice the amount due goes down (to 0: paid); on a paid one the post-payment amount
// is refunded or credited to the customer's balance; Stripe's bounds and parameter rules refused.
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";
import { sdkFields } from "./sdk-fields";
import { until } from "./wait";

type Emulator = Awaited<ReturnType<typeof startStripeEmulator>>;
const API_KEY = "sk_test_emulator_credit_notes";

let em: Emulator;
let stripe: Stripe;

beforeAll(async () => {
  em = await startStripeEmulator({ paymentDelayMs: 0 });
  stripe = new Stripe(API_KEY, { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
});
afterAll(async () => {
  await em?.close();
});

const events = async (contains: string) => ((await (await fetch(`${em.url}/_emulator/events?contains=${contains}`)).json()) as { data: Stripe.Event[] }).data;

async function openInvoice(amount: number) {
  const customer = await stripe.customers.create({ email: "office@example.com" });
  const draft = await stripe.invoices.create({ customer: customer.id, currency: "usd", collection_method: "send_invoice", days_until_due: 30 });
  await stripe.invoices.addLines(draft.id, { lines: [{ amount, description: "fee" }] });
  return { customer, invoice: await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: false }) };
}

async function paidInvoice(amount: number) {
  const customer = await stripe.customers.create({ email: "office@example.com" });
  const pm = await stripe.paymentMethods.attach("pm_card_visa", { customer: customer.id });
  await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: pm.id } });
  const draft = await stripe.invoices.create({ customer: customer.id, currency: "usd" });
  await stripe.invoices.addLines(draft.id, { lines: [{ amount, description: "fee" }] });
  await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: true });
  await until(async () => ((await stripe.invoices.retrieve(draft.id)).status === "paid" ? true : undefined));
  return { customer, invoice: await stripe.invoices.retrieve(draft.id) };
}

const refusal = (p: Promise<unknown>) => p.then(() => expect.unreachable("Stripe accepts it"), (e: Stripe.errors.StripeError) => e);

describe("credit notes on an open invoice", () => {
  it("lowers amount_due and amount_remaining; credit_note.created; reduced to 0 the invoice is paid", async () => {
    const { invoice } = await openInvoice(59_100);
    const first = await stripe.creditNotes.create({ invoice: invoice.id, amount: 5_000, reason: "order_change", memo: "Service credit", metadata: { credit_note_ref: "cn_x" } }, { idempotencyKey: `credit_note_${invoice.id}_1` });
    expect(first).toMatchObject({ object: "credit_note", status: "issued", amount: 5_000, pre_payment_amount: 5_000, post_payment_amount: 0, type: "pre_payment", reason: "order_change", memo: "Service credit", invoice: invoice.id });
    // The same key again: the same credit note, not a second.
    const again = await stripe.creditNotes.create({ invoice: invoice.id, amount: 5_000, reason: "order_change", memo: "Service credit", metadata: { credit_note_ref: "cn_x" } }, { idempotencyKey: `credit_note_${invoice.id}_1` });
    expect(again.id).toBe(first.id);
    expect(await stripe.invoices.retrieve(invoice.id)).toMatchObject({ status: "open", amount_due: 54_100, amount_remaining: 54_100, pre_payment_credit_notes_amount: 5_000 });
    expect((await events(first.id)).map((e) => e.type)).toContain("credit_note.created");
    expect((await stripe.creditNotes.retrieve(first.id)).id).toBe(first.id);
    expect((await stripe.creditNotes.list({ invoice: invoice.id })).data.map((n) => n.id)).toEqual([first.id]);

    const over = await refusal(stripe.creditNotes.create({ invoice: invoice.id, amount: 54_101 }));
    expect(over).toMatchObject({ statusCode: 400, code: "credit_note_amount_too_large" });
    const badSplit = await refusal(stripe.creditNotes.create({ invoice: invoice.id, amount: 1_000, refund_amount: 1_000 }));
    expect(badSplit).toMatchObject({ statusCode: 400, param: "refund_amount" });
    const badReason = await refusal(stripe.creditNotes.create({ invoice: invoice.id, amount: 1_000, reason: "requested_by_customer" as Stripe.CreditNoteCreateParams.Reason }));
    expect(badReason).toMatchObject({ statusCode: 400, param: "reason" });

    const rest = await stripe.creditNotes.create({ invoice: invoice.id, amount: 54_100, reason: "duplicate" });
    expect(rest.pre_payment_amount).toBe(54_100);
    expect(await stripe.invoices.retrieve(invoice.id)).toMatchObject({ status: "paid", amount_due: 0, amount_paid: 0, amount_remaining: 0 });
    expect((await events(invoice.id)).map((e) => e.type)).toContain("invoice.paid");
  });

  it("void gives the amount back to the open invoice (credit_note.voided)", async () => {
    const { invoice } = await openInvoice(10_000);
    const note = await stripe.creditNotes.create({ invoice: invoice.id, amount: 2_500 });
    const voided = await stripe.creditNotes.voidCreditNote(note.id);
    expect(voided).toMatchObject({ status: "void" });
    expect(await stripe.invoices.retrieve(invoice.id)).toMatchObject({ amount_due: 10_000, amount_remaining: 10_000 });
    expect((await events(note.id)).map((e) => e.type)).toContain("credit_note.voided");
  });

  it("refuses a draft invoice and an unknown one", async () => {
    const customer = await stripe.customers.create({ email: "office@example.com" });
    const draft = await stripe.invoices.create({ customer: customer.id, currency: "usd" });
    expect(await refusal(stripe.creditNotes.create({ invoice: draft.id, amount: 100 }))).toMatchObject({ statusCode: 400, code: "invoice_not_open" });
    expect(await refusal(stripe.creditNotes.create({ invoice: "in_doesnotexist123", amount: 100 }))).toMatchObject({ statusCode: 404 });
    expect(await refusal(stripe.creditNotes.create({ invoice: draft.id, amount: 100, lines: [{ type: "custom_line_item", unit_amount: 100, quantity: 1, description: "x" }] }))).toMatchObject({ statusCode: 400 });
  });
});

describe("credit notes on a paid invoice", () => {
  it("refund_amount refunds the charge; credit_amount credits the balance, applied to the next invoice", async () => {
    const { customer, invoice } = await paidInvoice(25_000);
    const refunded = await stripe.creditNotes.create({ invoice: invoice.id, amount: 5_000, refund_amount: 5_000, reason: "product_unsatisfactory" });
    expect(refunded).toMatchObject({ type: "post_payment", pre_payment_amount: 0, post_payment_amount: 5_000 });
    expect(refunded.refunds).toHaveLength(1);
    const refund = await stripe.refunds.retrieve(refunded.refunds[0]!.refund as string);
    expect(refund).toMatchObject({ amount: 5_000, status: "succeeded" });
    expect((await events(refund.id)).map((e) => e.type)).toContain("refund.created");

    const credited = await stripe.creditNotes.create({ invoice: invoice.id, amount: 4_000, credit_amount: 4_000 });
    expect(credited.customer_balance_transaction).toBeTruthy();
    expect((await stripe.customers.retrieve(customer.id)) as Stripe.Customer).toMatchObject({ balance: -4_000 });
    // Without a split: refused (the post-payment amount must be accounted for).
    expect(await refusal(stripe.creditNotes.create({ invoice: invoice.id, amount: 1_000 }))).toMatchObject({ statusCode: 400 });
    // Never more in all than the invoice's total (25,000 − 9,000 = 16,000 left).
    expect(await refusal(stripe.creditNotes.create({ invoice: invoice.id, amount: 16_001, credit_amount: 16_001 }))).toMatchObject({ code: "credit_note_amount_too_large" });

    const next = await stripe.invoices.create({ customer: customer.id, currency: "usd", collection_method: "send_invoice", days_until_due: 30 });
    await stripe.invoices.addLines(next.id, { lines: [{ amount: 6_300, description: "fee" }] });
    expect(await stripe.invoices.finalizeInvoice(next.id, { auto_advance: false })).toMatchObject({ total: 6_300, starting_balance: -4_000, amount_due: 2_300 });
  });
});

describe("the pinned version's CreditNote", () => {
  it("carries exactly the SDK type's fields, its line too", async () => {
    const types = sdkFields(["CreditNote", "CreditNoteLineItem"]);
    expect(types.CreditNote!.required.size).toBeGreaterThan(20);
    const { invoice } = await openInvoice(3_000);
    const note = await stripe.creditNotes.create({ invoice: invoice.id, amount: 1_000 });
    for (const [name, object] of [["CreditNote", note], ["CreditNoteLineItem", note.lines.data[0]]] as const) {
      const { all, required } = types[name]!;
      const keys = Object.keys(object as object).filter((k) => k !== "lastResponse");
      expect(keys.filter((k) => !all.has(k)), `${name}: fields the version does not have`).toEqual([]);
      expect([...required].filter((k) => !keys.includes(k)), `${name}: required fields missing`).toEqual([]);
    }
  }, 120_000); // reading the SDK's types with the TypeScript compiler takes seconds
});
