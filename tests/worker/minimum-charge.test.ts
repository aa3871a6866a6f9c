import type Stripe from "stripe";
import { env, SELF } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { bearer, mintToken } from "../harness/auth";
import { monthlyInvoices, onboardOffice, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { invoiceRows, stripeLog, stripeObject, syncStripe, until } from "../harness/stripe";

const api = "https://billing.test/v1/offices";

/** A plan of 30 (usd cents) a month and no patient charges: every month below Stripe's 50 minimum on its own. */
const tinyPlan = { baseFee: 30, setupFee: 0, tiers: [{ upTo: null, unitAmount: 0 }] };

async function as(role: "platform_admin" | "office_viewer", officeId: string) {
  return { ...bearer(await mintToken(role, role === "platform_admin" ? [] : [officeId])), "content-type": "application/json" };
}

/** The Stripe invoice the push made for our invoice (read through the SDK's types). */
async function stripeInvoiceOf(officeId: string, invoiceId: string): Promise<Stripe.Invoice> {
  const row = (await stripeLog(officeId)).find((r) => r.idempotencyKey === `invoice_${invoiceId}_create` && r.status === "succeeded");
  expect(row, `invoice ${invoiceId} was pushed`).toBeDefined();
  return stripeObject<Stripe.Invoice>(`/v1/invoices/${row!.stripeIds![0]}`);
}

describe("invoices below Stripe's minimum charge (docs/payment-plan.md §8.9)", () => {
  it("carries a month below the minimum to the next invoice: never sent, shown on the upcoming invoice, and Stripe's amount due is our total", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: tinyPlan });
    await runInvoicing([office], "2026-02-01T12:00:00Z");
    let [jan, feb] = await monthlyInvoices(office);
    expect(jan).toMatchObject({ status: "paid", stripeState: "carried", total: 30, amountPaid: 0 });
    expect((await syncStripe(office)).pushed).toEqual([]);
    expect((await stripeLog(office)).filter((r) => r.operation === "invoice")).toEqual([]);

    // The upcoming invoice shows the carried line and what the close will do.
    const res = await SELF.fetch(`${api}/${office}/invoices/upcoming`, { headers: await as("office_viewer", office) });
    expect(res.status).toBe(200);
    const upcoming = (await res.json()) as { total: number; minimumCharge: number; settlement: string; lines: { kind: string; description: string; amount: number; periodStart: string | null }[] };
    expect(upcoming).toMatchObject({ total: 60, minimumCharge: 50, settlement: "collect" });
    expect(upcoming.lines.map((l) => [l.kind, l.description, l.amount])).toEqual([
      ["base_fee", "Platform fee — Feb 2026", 30],
      ["carried_balance", "Balance carried from Jan 2026", 30],
    ]);

    const usage = await SELF.fetch(`${api}/${office}/usage`, { headers: await as("office_viewer", office) });
    expect(((await usage.json()) as { projected: unknown }).projected).toEqual({ patients: 0, baseFee: 30, oneOff: 0, carried: 30, total: 60 });

    await runInvoicing([office], "2026-03-01T12:00:00Z");
    [jan, feb] = await monthlyInvoices(office);
    expect(feb).toMatchObject({ status: "open", total: 60 });
    expect(feb!.lines.map((l) => [l.kind, l.amount, l.periodStart, l.periodEnd])).toEqual([
      ["base_fee", 30, "2026-02-01", "2026-03-01"],
      ["carried_balance", 30, "2026-01-01", "2026-02-01"],
    ]);
    // The close armed the outbox; this run or its alarm pushes February (and only February).
    await until("February on Stripe", async () => {
      await syncStripe(office);
      return (await invoiceRows(office)).find((i) => i.id === feb!.id)!.stripeState === "finalized";
    });
    expect((await stripeLog(office)).filter((r) => r.operation === "invoice").map((r) => r.idempotencyKey)).toEqual([`invoice_${feb!.id}_create`]);
    const onStripe = await stripeInvoiceOf(office, feb!.id);
    // Stripe's invoice agrees with ours: nothing on the customer's balance, due exactly our total.
    expect(onStripe).toMatchObject({ total: 60, starting_balance: 0, amount_due: 60 });
    expect(onStripe.lines.data.map((l) => [l.description, l.amount])).toEqual([
      ["Platform fee — Feb 2026", 30],
      ["Balance carried from Jan 2026", 30],
    ]);
    const customer = await stripeObject<Stripe.Customer>(`/v1/customers/${onStripe.customer as string}`);
    expect(customer.balance).toBe(0);
    // Reconciliation compares February only (January never went to Stripe) and finds nothing to
    // repair: at most Stripe's payment of it moving ours forward, for exactly our total.
    const rec = await SELF.fetch(`https://billing.test/v1/admin/reconciliation-runs`, { method: "POST", headers: await as("platform_admin", office), body: JSON.stringify({ officeIds: [office] }) });
    expect(rec.status, await rec.clone().text()).toBe(200);
    const recReport = (await rec.json()) as { checked: number; changed: { invoiceId: string; to: string }[] };
    expect(recReport.changed.every((c) => c.invoiceId === feb!.id && c.to === "paid")).toBe(true);
    const febNow = (await invoiceRows(office)).find((i) => i.id === feb!.id)!;
    if (febNow.status === "paid") expect(febNow.amountPaid).toBe(60);
    expect((await invoiceRows(office)).find((i) => i.id === jan!.id)).toMatchObject({ status: "paid", stripeState: "carried", amountPaid: 0 });
    // The January invoice, read through the API: paid by carrying, never on Stripe.
    const read = await SELF.fetch(`${api}/${office}/invoices/${jan!.id}`, { headers: await as("office_viewer", office) });
    expect(await read.json()).toMatchObject({ status: "paid", stripeState: "carried", total: 30, amountPaid: 0 });
  });

  it("a catch-up close carries into the next missed cycle's invoice, in one batch", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: tinyPlan });
    await runInvoicing([office], "2026-03-01T12:00:00Z"); // January and February at once
    const [jan, feb, mar] = await monthlyInvoices(office);
    expect(jan).toMatchObject({ status: "paid", stripeState: "carried", total: 30 });
    expect(feb).toMatchObject({ status: "open", stripeState: "none", total: 60 });
    expect(feb!.lines.map((l) => [l.kind, l.description, l.amount])).toEqual([
      ["base_fee", "Platform fee — Feb 2026", 30],
      ["carried_balance", "Balance carried from Jan 2026", 30],
    ]);
    expect(mar).toMatchObject({ status: "draft", total: 30 });
    expect(mar!.lines.some((l) => l.kind === "carried_balance")).toBe(false);
    await until("February on Stripe", async () => {
      await syncStripe(office);
      return (await invoiceRows(office)).find((i) => i.id === feb!.id)!.stripeState === "finalized";
    });
    expect(await stripeInvoiceOf(office, feb!.id)).toMatchObject({ total: 60, amount_due: 60, starting_balance: 0 });
    expect((await invoiceRows(office)).filter((i) => i.stripeState === "finalized").map((i) => i.id)).toEqual([feb!.id]);
  });

  it("writes off a last invoice below the minimum (cancel at period end): void, never sent", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: tinyPlan });
    const cancel = await SELF.fetch(`${api}/${office}/cancel`, { method: "POST", headers: await as("platform_admin", office), body: JSON.stringify({ when: "period_end" }) });
    expect(cancel.status, await cancel.clone().text()).toBe(200);
    const preview = await SELF.fetch(`${api}/${office}/invoices/upcoming`, { headers: await as("office_viewer", office) });
    expect(await preview.json()).toMatchObject({ total: 30, settlement: "write_off", next: null });
    await runInvoicing([office], "2026-02-01T12:00:00Z");
    const [jan, ...rest] = await monthlyInvoices(office);
    expect(rest).toEqual([]);
    expect(jan).toMatchObject({ status: "void", stripeState: "written_off", total: 30 });
    expect(jan!.voidedAt).not.toBeNull();
    expect((await syncStripe(office)).pushed).toEqual([]);
    expect(await stripeLog(office)).toEqual([]);
  });

  it("writes off an immediate cancellation's invoice below the minimum; one at or above it is collected", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { ...tinyPlan, baseFee: 3_100 } });
    // Canceled now: the days used of a 3,100 month, at least one (100): above the minimum, collected.
    const headers = await as("platform_admin", office);
    const small = await onboardOffice({ startsOn: "2026-01-01", plan: tinyPlan });
    const [a, b] = await Promise.all(
      [office, small].map((id) => SELF.fetch(`${api}/${id}/cancel`, { method: "POST", headers: { ...headers }, body: JSON.stringify({ when: "immediately" }) })),
    );
    expect(a!.status, await a!.clone().text()).toBe(200);
    expect(b!.status, await b!.clone().text()).toBe(200);
    const [kept] = await monthlyInvoices(office);
    expect(kept).toMatchObject({ status: "open", stripeState: "none" });
    expect(kept!.total).toBeGreaterThanOrEqual(50);
    // 30 a month, canceled now: above 0 (today is billed) and at most 30, below the minimum: written off, never sent.
    const [dropped] = await monthlyInvoices(small);
    expect(dropped).toMatchObject({ status: "void", stripeState: "written_off" });
    expect(dropped!.total).toBeGreaterThan(0);
    expect(dropped!.total).toBeLessThan(50);
    expect((await syncStripe(small)).pushed).toEqual([]);
    expect(await stripeLog(small)).toEqual([]);
  });

  it("refuses an invoice_now charge below the minimum (422) and takes it on the current invoice", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: tinyPlan });
    const headers = await as("platform_admin", office);
    const small = await SELF.fetch(`${api}/${office}/charges`, { method: "POST", headers, body: JSON.stringify({ amount: 49, category: "training", mode: "invoice_now" }) });
    await expectProblem(small, 422, "UNPROCESSABLE");
    expect((await invoiceRows(office)).filter((i) => i.kind === "one_off")).toEqual([]);
    const atMinimum = await SELF.fetch(`${api}/${office}/charges`, { method: "POST", headers, body: JSON.stringify({ amount: 50, category: "training", mode: "invoice_now" }) });
    expect(atMinimum.status, await atMinimum.clone().text()).toBeLessThan(300);
    const added = await SELF.fetch(`${api}/${office}/charges`, { method: "POST", headers, body: JSON.stringify({ amount: 49, category: "training", mode: "add_to_current" }) });
    expect(added.status, await added.clone().text()).toBeLessThan(300);
  });

  it("refuses a plan whose setup fee is below the minimum charge", async () => {
    const res = await SELF.fetch(`https://billing.test/v1/plans`, {
      method: "POST",
      headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
      body: JSON.stringify({ code: `tiny_${crypto.randomUUID().slice(0, 8)}`, name: "Tiny", version: { currency: "gbp", baseFee: 0, tiers: [{ upTo: null, unitAmount: 100 }], setupFee: 29 } }),
    });
    const problem = await expectProblem(res, 400, "VALIDATION_FAILED");
    expect(JSON.stringify(problem)).toContain("setupFee");
  });
});

describe("a balance set on the customer at Stripe (not ours: the Dashboard)", () => {
  it("makes Stripe's amount due differ from our total: the push and the reconciliation log it at error level", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: tinyPlan });
    const headers = await as("platform_admin", office);
    const charge = async () => {
      const res = await SELF.fetch(`${api}/${office}/charges`, { method: "POST", headers, body: JSON.stringify({ amount: 1_000, category: "training", mode: "invoice_now" }) });
      expect(res.status, await res.clone().text()).toBeLessThan(300);
      return ((await res.json()) as { invoiceId: string }).invoiceId;
    };
    const pushed = (id: string) =>
      until(`${id} on Stripe`, async () => {
        await syncStripe(office);
        return (await invoiceRows(office)).find((i) => i.id === id)!.stripeState === "finalized";
      });
    const first = await charge();
    await pushed(first);
    const customerId = (await stripeLog(office)).find((r) => r.operation === "customer")!.stripeIds![0]!;
    const set = await fetch(new URL(`/v1/customers/${customerId}`, env.STRIPE_API_BASE!), {
      method: "POST",
      headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}`, "content-type": "application/x-www-form-urlencoded" },
      body: "balance=30",
    });
    expect(set.status).toBe(200);
    const errors = vi.spyOn(console, "error");
    try {
      const second = await charge();
      await pushed(second);
      expect(await stripeInvoiceOf(office, second)).toMatchObject({ total: 1_000, starting_balance: 30, amount_due: 1_030 });
      const rec = await SELF.fetch(`https://billing.test/v1/admin/reconciliation-runs`, { method: "POST", headers, body: JSON.stringify({ officeIds: [office] }) });
      expect(rec.status).toBe(200);
      const logged = errors.mock.calls.map((c) => String(c[0])).filter((m) => m.includes(second));
      expect(logged.some((m) => m.includes("stripe invoice total differs from ours"))).toBe(true);
      expect(logged.some((m) => m.includes("stripe amount due differs from our total"))).toBe(true);
      expect(errors.mock.calls.map((c) => String(c[0])).some((m) => m.includes(first) && m.includes("differs"))).toBe(false);
    } finally {
      errors.mockRestore();
    }
  });
});
