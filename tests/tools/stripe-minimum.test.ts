// Stripe's minimum charge amounts in the emulator (tools/stripe-emulator/balances.mjs), read
// through the pinned SDK's types: an invoice due less than the currency's minimum is marked paid
// without a charge and its amount moves to the customer's balance, which the next invoice
// finalized adds to its amount due — so that invoice's amount due is not its total. The project's
// close never lets this happen (docs/payment-plan.md §8.9; tests/worker/minimum-charge.test.ts).
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";

let em: Awaited<ReturnType<typeof startStripeEmulator>>;
let stripe: Stripe;

beforeAll(async () => {
  em = await startStripeEmulator({ rpsLimit: 0, paymentDelayMs: 0 });
  stripe = new Stripe("sk_test_emulator_minimum", { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
});
afterAll(async () => {
  await em.close();
});

async function finalized(customer: string, currency: string, amount: number): Promise<Stripe.Invoice> {
  const draft = await stripe.invoices.create({ customer, currency, auto_advance: false, collection_method: "charge_automatically" });
  await stripe.invoices.addLines(draft.id!, { lines: [{ amount, description: "Setup fee" }] });
  return stripe.invoices.finalizeInvoice(draft.id!, { auto_advance: true });
}

describe("minimum charge amounts", () => {
  it("USD 0.30: marked paid without a charge, moved to the customer's balance, then added to the next invoice's amount due", async () => {
    const customer = await stripe.customers.create({ email: "min@example.test" });
    const small: Stripe.Invoice = await finalized(customer.id, "usd", 30);
    expect(small).toMatchObject({ status: "paid", total: 30, amount_due: 0, amount_paid: 0, starting_balance: 0, ending_balance: 30 });
    expect((await stripe.invoicePayments.list({ invoice: small.id! })).data).toEqual([]); // no charge
    expect((await stripe.customers.retrieve(customer.id)) as Stripe.Customer).toMatchObject({ balance: 30 });
    // A draft shows the balance it will start from.
    const draft = await stripe.invoices.create({ customer: customer.id, currency: "usd", auto_advance: false });
    expect(draft.starting_balance).toBe(30);
    await stripe.invoices.addLines(draft.id!, { lines: [{ amount: 4_900, description: "Platform fee — Dec 2026" }] });
    const next = await stripe.invoices.finalizeInvoice(draft.id!, { auto_advance: true });
    expect(next).toMatchObject({ total: 4_900, starting_balance: 30, amount_due: 4_930, ending_balance: 0 });
    expect((await stripe.customers.retrieve(customer.id)) as Stripe.Customer).toMatchObject({ balance: 0 });
  });

  it("uses each currency's minimum (JPY 50, GBP 0.30, HUF 175.00 as 17,500); at the minimum it charges", async () => {
    const customer = await stripe.customers.create({ email: "fx@example.test" });
    expect(await finalized(customer.id, "gbp", 29)).toMatchObject({ status: "paid", amount_due: 0, ending_balance: 29 });
    const other = await stripe.customers.create({ email: "fx2@example.test" });
    expect(await finalized(other.id, "gbp", 30)).toMatchObject({ status: "open", amount_due: 30, ending_balance: 0 });
    const jpy = await stripe.customers.create({ email: "jpy@example.test" });
    expect(await finalized(jpy.id, "jpy", 49)).toMatchObject({ status: "paid", amount_due: 0 });
    const huf = await stripe.customers.create({ email: "huf@example.test" });
    expect(await finalized(huf.id, "huf", 17_499)).toMatchObject({ status: "paid", amount_due: 0 });
  });

  it("two small invoices in a row accumulate until the balance reaches the minimum", async () => {
    const customer = await stripe.customers.create({ email: "acc@example.test" });
    expect(await finalized(customer.id, "usd", 20)).toMatchObject({ status: "paid", amount_due: 0, ending_balance: 20 });
    expect(await finalized(customer.id, "usd", 20)).toMatchObject({ status: "paid", starting_balance: 20, amount_due: 0, ending_balance: 40 });
    expect(await finalized(customer.id, "usd", 20)).toMatchObject({ starting_balance: 40, amount_due: 60, ending_balance: 0 });
  });
});
