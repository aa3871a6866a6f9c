// Tax (docs/payment-plan.md §11) through the API against the local stack: the office's tax setting
// (platform_admin), a manual rate as a Stripe tax rate on the invoice, Stripe Tax from the office's
// address (the emulator's registration fixture: US/NY at 8.875 %), the tax read back onto our
// invoice, the holds, and who may set it. The Worker runs with TAX_MODE=stripe_tax (vitest.config.ts).
import { env, SELF } from "cloudflare:test";
import { and, eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { invoiceLines, invoices } from "../../src/db/invoices";
import { newId } from "../../src/security/request-id";
import { offices } from "../../src/db/offices";
import { bearer, mintToken } from "../harness/auth";
import type Stripe from "stripe";
import { monthlyInvoices, onboardOffice, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";
import { emulatorLog, invoiceRows, stripeLog, stripeObject, syncStripe } from "../harness/stripe";
import { deliver, invoiceObject, stripeEvent } from "../harness/webhooks";

const api = "https://billing.test/v1";
const ny = { line1: "1 Main St", line2: null, city: "New York", state: "NY", postalCode: "10001", country: "US" };

type Invoice = { id: string; status?: string; amountDue?: number; total: number; stripeState: string; stripeError: string | null; amountPaid: number; tax: { mode: string; basisPoints: number | null; name: string | null; amount: number | null; totalIncludingTax: number | null } | null };

async function patch(officeId: string, body: unknown, token?: string) {
  return SELF.fetch(`${api}/offices/${officeId}`, { method: "PATCH", headers: { ...bearer(token ?? (await mintToken("platform_admin"))), "content-type": "application/json" }, body: JSON.stringify(body) });
}

/** A one-off charge invoiced at once (one line), then the office's outbox run. */
async function chargeNow(officeId: string, amount: number): Promise<string> {
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

async function readInvoice(officeId: string, invoiceId: string): Promise<Invoice> {
  const res = await SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}`, { headers: bearer(await mintToken("office_viewer", [officeId])) });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Invoice;
}

/** The emulator's create request of our invoice (its form body). */
async function createRequest(invoiceId: string) {
  return (await emulatorLog()).find((r) => r.method === "POST" && r.path === "/v1/invoices" && r.body.includes(invoiceId) && r.status === 200);
}

beforeAll(async () => {
  // The emulator's Stripe Tax registration fixture (tools/stripe-emulator/tax.mjs): New York at 8.875 %.
  const res = await fetch(new URL("/_emulator/tax/registrations", env.STRIPE_API_BASE!), { method: "POST", body: JSON.stringify({ country: "US", state: "NY", percentage: 8.875 }) });
  expect(res.status).toBe(200);
});

describe("a manual tax rate (§11.3)", () => {
  it("is set by platform_admin, audited by name, sent as one Stripe tax rate, and its tax read back per line rounding", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    const res = await patch(officeId, { tax: { mode: "manual", basisPoints: 825, name: "Sales tax" } });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { tax: unknown }).tax).toEqual({ mode: "manual", basisPoints: 825, name: "Sales tax" });
    const audit = await testDb().select().from(auditLog).where(sql`${auditLog.requestId} = ${res.headers.get("x-request-id")!}`);
    expect(audit.map((a) => [a.action, a.outcome, a.details])).toEqual([["office.update", "succeeded", { fields: ["tax"] }]]);

    // 1,000 × 8.25 % = 82.5 → 83 (half away from zero); 4,900 × 8.25 % = 404.25 → 404.
    const first = await chargeNow(officeId, 1_000);
    expect(await readInvoice(officeId, first)).toMatchObject({ total: 1_000, stripeState: "finalized", tax: { mode: "manual", basisPoints: 825, name: "Sales tax", amount: 83, totalIncludingTax: 1_083 } });
    // What is asked for is the total with its tax.
    expect(await readInvoice(officeId, first)).toMatchObject({ amountDue: 1_083 });
    const second = await chargeNow(officeId, 4_900);
    expect(await readInvoice(officeId, second)).toMatchObject({ total: 4_900, tax: { amount: 404, totalIncludingTax: 5_304 } });

    // One tax rate for the office and rate, keyed by both, named in each invoice's default_tax_rates.
    const rates = (await stripeLog(officeId)).filter((r) => r.operation === "taxRate" && r.status === "succeeded");
    expect(rates.map((r) => r.idempotencyKey)).toEqual([`taxrate_${officeId}_825_sales_tax`]);
    const txr = rates[0]!.stripeIds![0]!;
    for (const id of [first, second]) expect(decodeURIComponent((await createRequest(id))!.body)).toContain(`default_tax_rates[0]=${txr}`);
    const [office] = await testDb().select().from(offices).where(eq(offices.id, officeId));
    expect(office).toMatchObject({ stripeTaxRateId: txr, stripeTaxRateKey: "825_Sales tax" });
    // The push's audit entry carries the tax figure.
    const pushed = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "stripe.invoice_pushed")));
    expect(pushed.map((p) => (p.details as { taxAmount?: number }).taxAmount).sort()).toEqual([404, 83]);

    // Paid in full including tax: within bounds (0..totalIncludingTax), recorded as paid.
    const stripeId = (await stripeLog(officeId)).find((r) => r.idempotencyKey === `invoice_${first}_create`)!.stripeIds![0]!;
    expect((await deliver(stripeEvent("invoice.paid", invoiceObject({ stripeId, officeId, invoiceId: first, status: "paid", amount: 1_083 })))).status).toBe(200);
    await syncStripe(officeId);
    expect(await readInvoice(officeId, first)).toMatchObject({ amountPaid: 1_083, amountDue: 0 });
  });

  it("a push completed by Stripe's event never read the tax: the reconciliation reads it back, audited", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    expect((await patch(officeId, { tax: { mode: "manual", basisPoints: 2_000, name: "VAT" } })).status).toBe(200);
    const id = await chargeNow(officeId, 1_234);
    expect(await readInvoice(officeId, id)).toMatchObject({ tax: { amount: 247, totalIncludingTax: 1_481 } }); // 246.8 → 247
    // As if the push had stopped after Stripe's finalize and `invoice.finalized` completed it: no tax figure.
    await testDb().update(invoices).set({ taxAmount: null, totalIncludingTax: null }).where(eq(invoices.id, id));
    const rec = await SELF.fetch(`${api}/admin/reconciliation-runs`, { method: "POST", headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" }, body: JSON.stringify({ officeIds: [officeId] }) });
    expect(rec.status, await rec.clone().text()).toBe(200);
    expect(await readInvoice(officeId, id)).toMatchObject({ tax: { amount: 247, totalIncludingTax: 1_481 } });
    const read = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "stripe.tax_read_back")));
    expect(read.map((r) => r.details)).toEqual([{ taxAmount: 247 }]);
  });

  it("a credit note by line of a taxed invoice goes to Stripe as its amount, not by line (Stripe would credit tax on top, §8.10)", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    expect((await patch(officeId, { tax: { mode: "manual", basisPoints: 825, name: "Sales tax" } })).status).toBe(200);
    const id = await chargeNow(officeId, 4_900);
    const [line] = await testDb().select().from(invoiceLines).where(eq(invoiceLines.invoiceId, id));
    const res = await SELF.fetch(`${api}/offices/${officeId}/invoices/${id}/credit-notes`, {
      method: "POST",
      headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
      body: JSON.stringify({ lines: [{ lineId: line!.id, amount: 1_000 }], reason: "order_change", memo: "billing_error" }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const note = (await res.json()) as { id: string; lines: unknown };
    expect(note.lines).toEqual([{ lineId: line!.id, amount: 1_000 }]);
    const sent = (await emulatorLog()).find((r) => r.method === "POST" && r.path === "/v1/credit_notes" && r.idempotencyKey === `credit_note_${note.id}` && r.status === 200)!;
    const form = new URLSearchParams(sent.body);
    expect(form.get("amount")).toBe("1000");
    expect([...form.keys()].filter((k) => k.startsWith("lines"))).toEqual([]);
  });

  it("an open taxed invoice can be credited up to its total with tax; credited in full, it is paid", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    expect((await patch(officeId, { tax: { mode: "manual", basisPoints: 825, name: "Sales tax" } })).status).toBe(200);
    const id = await chargeNow(officeId, 4_900); // 404 tax: 5,304 due
    expect(await readInvoice(officeId, id)).toMatchObject({ total: 4_900, tax: { amount: 404, totalIncludingTax: 5_304 }, amountDue: 5_304 });
    const credit = async (amount: number) =>
      SELF.fetch(`${api}/offices/${officeId}/invoices/${id}/credit-notes`, {
        method: "POST",
        headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
        body: JSON.stringify({ amount, reason: "order_change", memo: "billing_error" }),
      });
    const over = await credit(5_305);
    expect(over.status, await over.clone().text()).toBe(409);
    expect(((await over.json()) as { detail: string }).detail).toContain("5304");
    const all = await credit(5_304);
    expect(all.status, await all.clone().text()).toBe(201);
    await syncStripe(officeId);
    expect(await readInvoice(officeId, id)).toMatchObject({ status: "paid", amountPaid: 0, amountDue: 0 });
  });

  it("no tax setting: the invoice and its Stripe request are exactly as before (tax null, no tax params)", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    const id = await chargeNow(officeId, 2_000);
    expect(await readInvoice(officeId, id)).toMatchObject({ total: 2_000, stripeState: "finalized", tax: null });
    const body = decodeURIComponent((await createRequest(id))!.body);
    expect(body).not.toContain("tax");
    expect((await invoiceRows(officeId)).find((i) => i.id === id)).toMatchObject({ taxMode: "none", taxAmount: null, totalIncludingTax: null });
  });

  it("refuses rates outside 1–5,000 basis points and names outside the list (400), and an unknown field", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    for (const tax of [
      { mode: "manual", basisPoints: 0, name: "VAT" },
      { mode: "manual", basisPoints: 5_001, name: "VAT" },
      { mode: "manual", basisPoints: 8.5, name: "VAT" },
      { mode: "manual", basisPoints: 825, name: "Patient surcharge" },
      { mode: "manual", basisPoints: 825, name: "VAT", inclusive: true },
      { mode: "exempt" },
    ]) {
      await expectProblem(await patch(officeId, { tax }), 400, "VALIDATION_FAILED");
    }
  });
});

describe("Stripe Tax (§11.7)", () => {
  it("computes from the office's address; the invoice shows Stripe's tax and the total including it", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    expect((await patch(officeId, { billingAddress: ny, tax: { mode: "stripe_tax" } })).status).toBe(200);
    const id = await chargeNow(officeId, 4_900);
    // 4,900 × 8.875 % = 434.875 → 435.
    expect(await readInvoice(officeId, id)).toMatchObject({ total: 4_900, stripeState: "finalized", stripeError: null, tax: { mode: "stripe_tax", basisPoints: null, amount: 435, totalIncludingTax: 5_335 } });
    expect(decodeURIComponent((await createRequest(id))!.body)).toContain("automatic_tax[enabled]=true");
  });

  it("without an address: refused at the door (409), and a push found without one is held, nothing sent", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    await expectProblem(await patch(officeId, { tax: { mode: "stripe_tax" } }), 409, "CONFLICT");
    expect((await patch(officeId, { billingAddress: ny, tax: { mode: "stripe_tax" } })).status).toBe(200);
    await expectProblem(await patch(officeId, { billingAddress: null }), 409, "CONFLICT");
    // Stored around the API (an address removed in the database): the push is held with its reason.
    await testDb().update(offices).set({ billingAddress: null }).where(eq(offices.id, officeId));
    const id = await chargeNow(officeId, 3_000);
    expect(await readInvoice(officeId, id)).toMatchObject({ stripeState: "none", stripeError: "tax_address_required", tax: { mode: "stripe_tax", amount: null } });
    expect(await createRequest(id)).toBeUndefined();
    const held = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "stripe.push_held")));
    expect(held.map((h) => h.details)).toEqual([{ reason: "tax_address_required", profileVersion: expect.any(Number) }]);
    // Another run changes nothing (held until the profile changes) …
    await syncStripe(officeId);
    expect(await createRequest(id)).toBeUndefined();
    // … the address comes back: the customer gets it, then the invoice goes, taxed.
    expect((await patch(officeId, { billingAddress: ny })).status).toBe(200);
    await syncStripe(officeId);
    expect(await readInvoice(officeId, id)).toMatchObject({ stripeState: "finalized", stripeError: null, tax: { amount: 266, totalIncludingTax: 3_266 } });
  });

  it("a location Stripe cannot place: finalization refused, the invoice held as draft_created until the address is corrected", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    expect((await patch(officeId, { billingAddress: { ...ny, postalCode: "1000X" }, tax: { mode: "stripe_tax" } })).status).toBe(200);
    const id = await chargeNow(officeId, 4_900);
    expect(await readInvoice(officeId, id)).toMatchObject({ stripeState: "draft_created", stripeError: "customer_tax_location_invalid", tax: { amount: null } });
    await syncStripe(officeId);
    const finalizes = async () => (await stripeLog(officeId)).filter((r) => r.operation === "finalize").map((r) => [r.idempotencyKey, r.status]);
    expect(await finalizes()).toEqual([[`invoice_${id}_finalize`, "failed"]]);
    const patched = await patch(officeId, { billingAddress: ny });
    const version = (await testDb().select({ v: offices.profileVersion }).from(offices).where(eq(offices.id, officeId)))[0]!.v;
    expect(patched.status).toBe(200);
    await syncStripe(officeId);
    // A new request (Stripe kept its refusal under the first key), named by the profile version.
    expect(await finalizes()).toEqual([
      [`invoice_${id}_finalize`, "failed"],
      [`invoice_${id}_finalize_p${version}`, "succeeded"],
    ]);
    expect(await readInvoice(officeId, id)).toMatchObject({ stripeState: "finalized", stripeError: null, tax: { amount: 435, totalIncludingTax: 5_335 } });
  });

  it("a coupon under Stripe Tax (§6.10): the discount goes as an amount-off coupon of the invoice, never a negative line; tax on the discounted lines", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01", plan: { baseFee: 4_900 } });
    expect((await patch(officeId, { billingAddress: ny, tax: { mode: "stripe_tax" } })).status).toBe(200);
    const admin = { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" };
    const code = `TAX${crypto.randomUUID().replace(/-/g, "").slice(0, 10).toUpperCase()}`;
    expect((await SELF.fetch(`${api}/coupons`, { method: "POST", headers: admin, body: JSON.stringify({ code, percentOff: 10, duration: "forever" }) })).status).toBe(201);
    expect((await SELF.fetch(`${api}/offices/${officeId}/discount`, { method: "POST", headers: admin, body: JSON.stringify({ couponCode: code }) })).status).toBe(201);
    const charge = await SELF.fetch(`${api}/offices/${officeId}/charges`, { method: "POST", headers: admin, body: JSON.stringify({ amount: 1_000, category: "training", mode: "add_to_current" }) });
    expect(charge.status, await charge.clone().text()).toBe(201);
    await runInvoicing([officeId], "2026-10-01T06:00:00Z");
    const [sep] = await monthlyInvoices(officeId);
    // Ours: 4,900 + 1,000 − 590 = 5,310 (the discount line stays ours, §6.10).
    expect(sep!.lines.map((l) => [l.description, l.amount])).toEqual([
      ["Platform fee — Sep 2026", 4_900],
      ["Training", 1_000],
      ["Discount — Sep 2026", -590],
    ]);
    await syncStripe(officeId);
    // Stripe: the coupon (ours, for this invoice alone), named by the invoice; the lines without the negative one.
    const log = await stripeLog(officeId);
    expect(log.filter((r) => r.status === "succeeded").map((r) => r.operation)).toEqual(["customer", "coupon", "invoice", "addLines", "finalize"]);
    const coupon = await stripeObject<Stripe.Coupon>(`/v1/coupons/discount_${sep!.id}`);
    expect(coupon).toMatchObject({ amount_off: 590, currency: "usd", duration: "once", max_redemptions: 1, times_redeemed: 1, name: "Discount — Sep 2026", metadata: { office_ref: officeId, invoice_ref: sep!.id } });
    expect(decodeURIComponent((await createRequest(sep!.id))!.body)).toContain(`discounts[0][coupon]=discount_${sep!.id}`);
    const stripeId = log.find((r) => r.idempotencyKey === `invoice_${sep!.id}_create`)!.stripeIds![0]!;
    const inv = await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`);
    expect(inv.lines.data.map((l) => [l.description, l.amount, l.discount_amounts?.[0]?.amount])).toEqual([
      ["Platform fee — Sep 2026", 4_900, 490],
      ["Training", 1_000, 100],
    ]);
    // Tax per line on the discounted amount: 4,410 × 8.875 % = 391.39 → 391; 900 × 8.875 % = 79.875 → 80.
    expect(inv.lines.data.map((l) => l.taxes?.map((t) => [t.taxable_amount, t.amount]))).toEqual([[[4_410, 391]], [[900, 80]]]);
    expect(inv).toMatchObject({ subtotal: 5_900, total_excluding_tax: 5_310, total: 5_781, amount_due: 5_781 });
    expect(await readInvoice(officeId, sep!.id)).toMatchObject({ total: 5_310, stripeState: "finalized", stripeError: null, tax: { mode: "stripe_tax", amount: 471, totalIncludingTax: 5_781 } });
    // Another run sends nothing more; October's invoice gets its own coupon.
    await syncStripe(officeId);
    expect((await stripeLog(officeId)).length).toBe(log.length);
    await runInvoicing([officeId], "2026-11-01T06:00:00Z");
    await syncStripe(officeId);
    const [, oct] = await monthlyInvoices(officeId);
    expect(await readInvoice(officeId, oct!.id)).toMatchObject({ total: 4_410, stripeState: "finalized", tax: { amount: 391, totalIncludingTax: 4_801 } });
    expect(await stripeObject<Stripe.Coupon>(`/v1/coupons/discount_${oct!.id}`)).toMatchObject({ amount_off: 490 });
  });

  it("a coupon already made under our id (a push repeated past Stripe's key memory) is the invoice's coupon; the emulator refuses a negative line on an automatic-tax invoice", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    expect((await patch(officeId, { billingAddress: ny, tax: { mode: "stripe_tax" } })).status).toBe(200);
    // An open invoice with a discount line, as a close with a coupon leaves one (§6.10), written directly.
    const db = testDb();
    const id = newId("inv");
    await db.insert(invoices).values({ id, officeId, kind: "one_off", status: "open", currency: "usd", periodStart: "2026-11-01", periodEnd: "2026-12-01", subtotal: 4_000, total: 4_000, finalizedAt: Date.now(), updatedAt: Date.now() });
    await db.insert(invoiceLines).values([
      { id: newId("il"), invoiceId: id, kind: "one_off", description: "Training", category: "training", quantity: 1, amount: 4_900, position: 0 },
      { id: newId("il"), invoiceId: id, kind: "discount", description: "Discount — Nov 2026", quantity: 1, amount: -900, position: 1 },
    ]);
    // The coupon exists already (made by an earlier attempt whose key Stripe no longer remembers).
    const made = await fetch(new URL("/v1/coupons", env.STRIPE_API_BASE!), {
      method: "POST",
      headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ id: `discount_${id}`, amount_off: "900", currency: "usd", duration: "once", max_redemptions: "1" }).toString(),
    });
    expect(made.status).toBe(200);
    await syncStripe(officeId);
    const coupons = (await stripeLog(officeId)).filter((r) => r.operation === "coupon").map((r) => [r.status, r.errorCode]);
    expect(coupons).toEqual([["failed", "resource_already_exists"]]);
    // 4,000 × 8.875 % = 355.
    expect(await readInvoice(officeId, id)).toMatchObject({ stripeState: "finalized", tax: { amount: 355, totalIncludingTax: 4_355 } });

    // What Stripe refuses, the emulator refuses: a negative line on an automatic-tax invoice.
    const customer = (await stripeLog(officeId)).find((r) => r.operation === "customer")!.stripeIds![0]!;
    const form = (body: Record<string, string>) => ({ method: "POST", headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(body).toString() });
    const draft = (await (await fetch(new URL("/v1/invoices", env.STRIPE_API_BASE!), form({ customer, "automatic_tax[enabled]": "true" }))).json()) as { id: string };
    const refused = await fetch(new URL(`/v1/invoices/${draft.id}/add_lines`, env.STRIPE_API_BASE!), form({ "lines[0][amount]": "-900", "lines[0][description]": "Discount — Nov 2026" }));
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { param: string } }).error.param).toBe("lines[0][amount]");
  });

  it("outside New York's registration: Stripe collects none, the invoice shows 0", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    expect((await patch(officeId, { billingAddress: { ...ny, city: "Newark", state: "NJ", postalCode: "07102" }, tax: { mode: "stripe_tax" } })).status).toBe(200);
    const id = await chargeNow(officeId, 4_900);
    expect(await readInvoice(officeId, id)).toMatchObject({ stripeState: "finalized", tax: { amount: 0, totalIncludingTax: 4_900 } });
  });
});

describe("who may set an office's tax (role matrix rows of PATCH /v1/offices/{officeId} with `tax`)", () => {
  const rows: [string, "own" | "other", number, string?][] = [
    ["platform_admin", "own", 200],
    ["office_admin", "own", 403, "FORBIDDEN"],
    ["office_admin", "other", 404, "NOT_FOUND"],
    ["office_viewer", "own", 403, "FORBIDDEN"],
    ["office_viewer", "other", 404, "NOT_FOUND"],
    ["clinical_system", "own", 403, "FORBIDDEN"],
    ["clinical_system", "other", 404, "NOT_FOUND"],
  ];
  for (const [role, scope, status, code] of rows) {
    it(`${role} (${scope} office) → ${status}`, async () => {
      const own = await onboardOffice({ startsOn: "2026-11-02" });
      const other = await onboardOffice({ startsOn: "2026-11-02" });
      const token = await mintToken(role as Parameters<typeof mintToken>[0], role === "platform_admin" ? [] : [own]);
      const target = scope === "own" ? own : other;
      const res = await patch(target, { tax: { mode: "manual", basisPoints: 500, name: "GST" } }, token);
      if (code) await expectProblem(res, status, code);
      else expect(res.status).toBe(status);
      const [office] = await testDb().select().from(offices).where(eq(offices.id, target));
      expect(office!.taxMode).toBe(status === 200 ? "manual" : null);
      if (status === 403) {
        const refused = await testDb().select().from(auditLog).where(sql`${auditLog.requestId} = ${res.headers.get("x-request-id")!}`);
        expect(refused.map((a) => [a.action, a.outcome])).toContainEqual(["office.tax_settings", "denied"]);
      }
    });
  }
});
