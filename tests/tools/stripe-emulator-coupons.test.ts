// The emulator's coupons and an invoice's discounts (payment-plan §6.10 under Stripe Tax), and credit
// notes by line (§8.10), through the real `stripe` package: what Stripe documents for the pinned
// version, what it refuses refused, the objects carrying exactly the SDK types' fields.
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";
import { sdkFields } from "./sdk-fields";

type Emulator = Awaited<ReturnType<typeof startStripeEmulator>>;
const API_KEY = "sk_test_emulator_coupons";

let em: Emulator;
let stripe: Stripe;

beforeAll(async () => {
  em = await startStripeEmulator({ paymentDelayMs: 0 });
  stripe = new Stripe(API_KEY, { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
  const res = await fetch(`${em.url}/_emulator/tax/registrations`, { method: "POST", body: JSON.stringify({ country: "US", state: "NY", percentage: 8.875 }) });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await em?.close();
});

const refusal = (p: Promise<unknown>) => p.then(() => expect.unreachable("Stripe accepts it"), (e: Stripe.errors.StripeError) => e);
const ny = { line1: "1 Main St", city: "New York", state: "NY", postal_code: "10001", country: "US" };

describe("coupons", () => {
  it("an amount off under our id, once; a taken id, both kinds or neither refused; spent after its last redemption", async () => {
    const id = `discount_inv_${"a".repeat(32)}`;
    const coupon = await stripe.coupons.create({ id, amount_off: 590, currency: "usd", duration: "once", max_redemptions: 1, name: "Discount — Sep 2026" });
    expect(coupon).toMatchObject({ id, object: "coupon", amount_off: 590, currency: "usd", percent_off: null, duration: "once", max_redemptions: 1, times_redeemed: 0, valid: true });
    expect(await refusal(stripe.coupons.create({ id, amount_off: 1, currency: "usd" }))).toMatchObject({ statusCode: 400, code: "resource_already_exists" });
    expect(await refusal(stripe.coupons.create({ amount_off: 1, percent_off: 10, currency: "usd" }))).toMatchObject({ statusCode: 400 });
    expect(await refusal(stripe.coupons.create({ duration: "once" }))).toMatchObject({ statusCode: 400 });
    expect(await refusal(stripe.coupons.create({ amount_off: 100 }))).toMatchObject({ statusCode: 400, code: "parameter_missing" });
    const types = sdkFields(["Coupon"]);
    const keys = Object.keys(coupon).filter((k) => k !== "lastResponse");
    expect(keys.filter((k) => !types.Coupon!.all.has(k))).toEqual([]);
    expect([...types.Coupon!.required].filter((k) => !keys.includes(k))).toEqual([]);

    // On an automatic-tax invoice: spread over the lines, tax on what is left of each.
    const customer = await stripe.customers.create({ email: "office@example.com", address: ny });
    const draft = await stripe.invoices.create({ customer: customer.id, currency: "usd", automatic_tax: { enabled: true }, discounts: [{ coupon: id }] });
    expect(await refusal(stripe.invoices.addLines(draft.id, { lines: [{ amount: -590, description: "Discount — Sep 2026" }] }))).toMatchObject({ statusCode: 400, param: "lines[0][amount]" });
    await stripe.invoices.addLines(draft.id, { lines: [{ amount: 4_900, description: "Platform fee — Sep 2026" }, { amount: 1_000, description: "Training" }] });
    const inv = await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: false });
    expect(inv.lines.data.map((l) => [l.amount, l.discount_amounts?.[0]?.amount, l.taxes?.[0]?.taxable_amount, l.taxes?.[0]?.amount])).toEqual([
      [4_900, 490, 4_410, 391],
      [1_000, 100, 900, 80],
    ]);
    expect(inv).toMatchObject({ subtotal: 5_900, total_excluding_tax: 5_310, total: 5_781, amount_due: 5_781, total_discount_amounts: [{ amount: 590 }] });
    expect(await stripe.coupons.retrieve(id)).toMatchObject({ times_redeemed: 1, valid: false });
    const again = await stripe.customers.create({ email: "office@example.com", address: ny });
    expect(await refusal(stripe.invoices.create({ customer: again.id, currency: "usd", automatic_tax: { enabled: true }, discounts: [{ coupon: id }] }))).toMatchObject({ statusCode: 400, param: "discounts[0][coupon]" });
    expect(await refusal(stripe.invoices.create({ customer: again.id, currency: "usd", discounts: [{ coupon: "NOPE1234" }] }))).toMatchObject({ statusCode: 400, code: "resource_missing" });
  }, 120_000); // reading the SDK's types with the TypeScript compiler takes seconds
});

describe("credit notes by line", () => {
  it("credit the invoice's own lines, each at most what it has left; the note's amount is their sum", async () => {
    const customer = await stripe.customers.create({ email: "office@example.com" });
    const draft = await stripe.invoices.create({ customer: customer.id, currency: "usd", collection_method: "send_invoice", days_until_due: 30 });
    await stripe.invoices.addLines(draft.id, { lines: [{ amount: 4_900, description: "fee" }, { amount: 1_000, description: "training" }] });
    const inv = await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: false });
    const [fee, training] = inv.lines.data;
    const note = await stripe.creditNotes.create({ invoice: inv.id, lines: [{ type: "invoice_line_item", invoice_line_item: fee!.id, amount: 900 }, { type: "invoice_line_item", invoice_line_item: training!.id, amount: 400 }] });
    expect(note).toMatchObject({ amount: 1_300, pre_payment_amount: 1_300 });
    expect(note.lines.data.map((l) => [l.type, l.invoice_line_item, l.amount, l.description])).toEqual([
      ["invoice_line_item", fee!.id, 900, "fee"],
      ["invoice_line_item", training!.id, 400, "training"],
    ]);
    expect(await stripe.invoices.retrieve(inv.id)).toMatchObject({ amount_due: 4_600 });
    expect(await refusal(stripe.creditNotes.create({ invoice: inv.id, lines: [{ type: "invoice_line_item", invoice_line_item: training!.id, amount: 601 }] }))).toMatchObject({ statusCode: 400, param: "lines[0][amount]" });
    expect(await refusal(stripe.creditNotes.create({ invoice: inv.id, lines: [{ type: "invoice_line_item", invoice_line_item: "il_notours", amount: 1 }] }))).toMatchObject({ statusCode: 400, param: "lines[0][invoice_line_item]" });
    expect(await refusal(stripe.creditNotes.create({ invoice: inv.id, amount: 2, lines: [{ type: "invoice_line_item", invoice_line_item: fee!.id, amount: 1 }] }))).toMatchObject({ statusCode: 400, param: "amount" });
    const custom = await stripe.creditNotes.create({ invoice: inv.id, lines: [{ type: "custom_line_item", description: "goodwill", unit_amount: 100, quantity: 2 }] });
    expect(custom).toMatchObject({ amount: 200 });
    const types = sdkFields(["CreditNoteLineItem"]);
    const keys = Object.keys(note.lines.data[0]!);
    expect(keys.filter((k) => !types.CreditNoteLineItem!.all.has(k))).toEqual([]);
    expect([...types.CreditNoteLineItem!.required].filter((k) => !keys.includes(k))).toEqual([]);
  }, 120_000);
});
