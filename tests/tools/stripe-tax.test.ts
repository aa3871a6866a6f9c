// Tax in the emulator (tools/stripe-emulator/tax.mjs), read through the pinned SDK's types: tax
// rates and an invoice's `default_tax_rates`, Stripe Tax (`automatic_tax`) from the registrations
// fixture and the customer's address, and Stripe's refusals (docs/payment-plan.md §11).
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";
import { sdkFields } from "./sdk-fields";

let em: Awaited<ReturnType<typeof startStripeEmulator>>;
let stripe: Stripe;
const control = (path: string, body: unknown) => fetch(`http://127.0.0.1:${em.port}${path}`, { method: "POST", body: JSON.stringify(body) });

beforeAll(async () => {
  em = await startStripeEmulator({ rpsLimit: 0, paymentDelayMs: 0 });
  stripe = new Stripe("sk_test_emulator_tax", { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
  expect((await control("/_emulator/tax/registrations", { country: "US", state: "NY", percentage: 8.875 })).status).toBe(200);
});
afterAll(async () => {
  await em.close();
});

const ny = { line1: "1 Main St", city: "New York", state: "NY", postal_code: "10001", country: "US" };

async function draft(customer: string, extra: Partial<Stripe.InvoiceCreateParams>, lines: Stripe.InvoiceAddLinesParams.Line[]) {
  const inv = await stripe.invoices.create({ customer, currency: "usd", auto_advance: false, collection_method: "charge_automatically", pending_invoice_items_behavior: "exclude", ...extra });
  await stripe.invoices.addLines(inv.id!, { lines });
  return inv.id!;
}

describe("tax rates on an invoice (default_tax_rates)", () => {
  it("taxes each line at the rate, rounded per line half away from zero; totals per the SDK's fields (§11 worked example)", async () => {
    const rate: Stripe.TaxRate = await stripe.taxRates.create({ display_name: "Sales tax", percentage: 8.25, inclusive: false });
    expect(rate).toMatchObject({ object: "tax_rate", percentage: 8.25, inclusive: false, active: true });
    const fields = sdkFields(["TaxRate"]).TaxRate!;
    expect(new Set(Object.keys(rate))).toEqual(fields.all);
    const customer = await stripe.customers.create({ email: "tax@example.test" });
    const id = await draft(customer.id, { default_tax_rates: [rate.id] }, [
      { amount: 4_900, description: "Platform fee — Nov 2026" },
      { quantity: 40, price_data: { currency: "usd", product_data: { name: "Active patients" }, unit_amount: 800 }, description: "Active patients 1–50 — Nov 2026" },
      { amount: 1_000, description: "Training" },
      { amount: -3_000, description: "Discount — Nov 2026" },
    ]);
    const inv: Stripe.Invoice = await stripe.invoices.finalizeInvoice(id, { auto_advance: false });
    expect(inv.lines.data.map((l) => l.taxes?.[0]?.amount)).toEqual([404, 2_640, 83, -248]);
    expect(inv).toMatchObject({ subtotal: 34_900, total_excluding_tax: 34_900, total: 37_779, amount_due: 37_779 });
    expect(inv.total_taxes).toEqual([{ amount: 2_879, tax_behavior: "exclusive", tax_rate_details: { tax_rate: rate.id }, taxability_reason: "standard_rated", taxable_amount: 34_900, type: "tax_rate_details" }]);
  });

  it("a line's own tax_rates replace the invoice's default ones; the line object does not carry them", async () => {
    const standard = await stripe.taxRates.create({ display_name: "VAT", percentage: 20, inclusive: false });
    const reduced = await stripe.taxRates.create({ display_name: "VAT", percentage: 5, inclusive: false });
    const customer = await stripe.customers.create({ email: "lines@example.test" });
    const id = await draft(customer.id, { default_tax_rates: [standard.id] }, [
      { amount: 1_000, description: "Platform fee — Nov 2026" },
      { amount: 1_000, description: "Training", tax_rates: [reduced.id] },
    ]);
    const inv = await stripe.invoices.finalizeInvoice(id, { auto_advance: false });
    expect(inv.lines.data.map((l) => [l.taxes?.[0]?.amount, l.taxes?.[0]?.tax_rate_details?.tax_rate])).toEqual([
      [200, standard.id],
      [50, reduced.id],
    ]);
    expect(inv).toMatchObject({ total_excluding_tax: 2_000, total: 2_250 });
    expect(Object.keys(inv.lines.data[1]!)).not.toContain("_tax_rates");
    await expect(stripe.invoices.addLines((await stripe.invoices.create({ customer: customer.id, currency: "usd" })).id!, { lines: [{ amount: 1, description: "Training", tax_rates: ["txr_doesnotexist1"] }] })).rejects.toMatchObject({ statusCode: 400, param: "lines[0][tax_rates][0]" });
  });

  it("refuses an unknown tax rate, and a rate above 100", async () => {
    const customer = await stripe.customers.create({ email: "tax2@example.test" });
    await expect(stripe.invoices.create({ customer: customer.id, currency: "usd", default_tax_rates: ["txr_doesnotexist1"] })).rejects.toMatchObject({ statusCode: 400, code: "resource_missing", param: "default_tax_rates[0]" });
    await expect(stripe.taxRates.create({ display_name: "VAT", percentage: 101, inclusive: false })).rejects.toMatchObject({ statusCode: 400, param: "percentage" });
  });
});

describe("Stripe Tax (automatic_tax)", () => {
  it("computes from the registration at the customer's location; none there: not_collecting, 0", async () => {
    const customer = await stripe.customers.create({ email: "auto@example.test", address: ny });
    expect(((await stripe.customers.retrieve(customer.id, { expand: ["tax"] })) as Stripe.Customer).tax).toMatchObject({ automatic_tax: "supported", location: { country: "US", state: "NY", source: "billing_address" } });
    const id = await draft(customer.id, { automatic_tax: { enabled: true } }, [
      { amount: 4_900, description: "Platform fee — Nov 2026" },
      { amount: 32_000, description: "Active patients — Nov 2026" },
    ]);
    const inv = await stripe.invoices.finalizeInvoice(id, { auto_advance: false });
    expect(inv.automatic_tax).toMatchObject({ enabled: true, status: "complete" });
    expect(inv.total_taxes?.reduce((a, t) => a + t.amount, 0)).toBe(3_275);
    expect(inv).toMatchObject({ total_excluding_tax: 36_900, total: 40_175, amount_due: 40_175 });

    const nj = await stripe.customers.create({ email: "nj@example.test", address: { ...ny, city: "Newark", state: "NJ", postal_code: "07102" } });
    expect(((await stripe.customers.retrieve(nj.id, { expand: ["tax"] })) as Stripe.Customer).tax?.automatic_tax).toBe("not_collecting");
    const njInv = await stripe.invoices.finalizeInvoice(await draft(nj.id, { automatic_tax: { enabled: true } }, [{ amount: 4_900, description: "Platform fee — Nov 2026" }]));
    expect(njInv).toMatchObject({ total: 4_900, amount_due: 4_900 });
    expect(njInv.total_taxes).toEqual([expect.objectContaining({ amount: 0, taxability_reason: "not_collecting" })]);
  });

  it("an unrecognised location refuses finalization (customer_tax_location_invalid); fixed, a new request finalizes", async () => {
    const customer = await stripe.customers.create({ email: "bad@example.test", address: { ...ny, postal_code: "1000X" } });
    expect(((await stripe.customers.retrieve(customer.id, { expand: ["tax"] })) as Stripe.Customer).tax?.automatic_tax).toBe("unrecognized_location");
    const id = await draft(customer.id, { automatic_tax: { enabled: true } }, [{ amount: 4_900, description: "Platform fee — Nov 2026" }]);
    await expect(stripe.invoices.finalizeInvoice(id, {}, { idempotencyKey: "fin_1" })).rejects.toMatchObject({ statusCode: 400, code: "customer_tax_location_invalid" });
    expect((await stripe.invoices.retrieve(id)).last_finalization_error).toMatchObject({ code: "customer_tax_location_invalid" });
    await stripe.customers.update(customer.id, { address: ny });
    // The same key replays Stripe's saved answer (the endpoint ran); a new key finalizes.
    await expect(stripe.invoices.finalizeInvoice(id, {}, { idempotencyKey: "fin_1" })).rejects.toMatchObject({ code: "customer_tax_location_invalid" });
    const inv = await stripe.invoices.finalizeInvoice(id, {}, { idempotencyKey: "fin_2" });
    expect(inv).toMatchObject({ status: "open", total: 4_900 + 435, last_finalization_error: null });
  });

  it("refuses a negative line on an automatic-tax invoice", async () => {
    const customer = await stripe.customers.create({ email: "neg@example.test", address: ny });
    const inv = await stripe.invoices.create({ customer: customer.id, currency: "usd", auto_advance: false, automatic_tax: { enabled: true } });
    await expect(stripe.invoices.addLines(inv.id!, { lines: [{ amount: 4_900, description: "Platform fee — Nov 2026" }, { amount: -100, description: "Discount — Nov 2026" }] })).rejects.toMatchObject({ statusCode: 400, param: "lines[1][amount]" });
    const rate = await stripe.taxRates.create({ display_name: "Sales tax", percentage: 4, inclusive: false });
    await expect(stripe.invoices.addLines(inv.id!, { lines: [{ amount: 4_900, description: "Platform fee — Nov 2026", tax_rates: [rate.id] }] })).rejects.toMatchObject({ statusCode: 400, param: "lines[0][tax_rates]" });
    expect((await stripe.invoices.retrieve(inv.id!)).lines.data).toHaveLength(0);
  });

  it("the registrations fixture refuses a malformed country", async () => {
    expect((await control("/_emulator/tax/registrations", { country: "usa", percentage: 5 })).status).toBe(400);
  });
});
