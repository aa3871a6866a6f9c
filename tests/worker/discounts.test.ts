import { SELF } from "cloudflare:test";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { bearer, mintToken } from "../harness/auth";
import { monthlyInvoices, onboardOffice, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { invoiceRows, stripeLog, stripeObject, syncStripe } from "../harness/stripe";

const api = "https://billing.test/v1";
const code = (prefix = "T") => `${prefix}${crypto.randomUUID().replace(/-/g, "").slice(0, 12).toUpperCase()}`;

async function call(method: string, path: string, body?: unknown, role: "platform_admin" | "office_admin" = "platform_admin", officeIds: string[] = []) {
  return SELF.fetch(`${api}${path}`, {
    method,
    headers: { ...bearer(await mintToken(role, officeIds)), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function coupon(terms: Record<string, unknown>) {
  const c = code();
  const res = await call("POST", "/coupons", { code: c, ...terms });
  expect(res.status, await res.clone().text()).toBe(201);
  return c;
}

async function apply(officeId: string, couponCode: string) {
  return call("POST", `/offices/${officeId}/discount`, { couponCode });
}

const lines = async (officeId: string) =>
  (await monthlyInvoices(officeId)).map((i) => [i.periodStart, i.status, i.total, i.lines.filter((l) => l.kind === "discount").map((l) => [l.description, l.amount])]);

describe("coupons (payment-plan §6.10)", () => {
  it("are defined once, listed with their redemptions, archived; bad definitions are 400, a taken code 409", async () => {
    const c = await coupon({ percentOff: 15, duration: "once", maxRedemptions: 5 });
    await expectProblem(await call("POST", "/coupons", { code: c, percentOff: 10, duration: "forever" }), 409, "CONFLICT");
    for (const bad of [
      { code: code(), percentOff: 10, amountOff: 100, currency: "usd", duration: "once" },
      { code: code(), duration: "once" },
      { code: code(), amountOff: 100, duration: "once" },
      { code: code(), percentOff: 10, currency: "usd", duration: "once" },
      { code: code(), percentOff: 101, duration: "once" },
      { code: code(), percentOff: 12.5, duration: "once" },
      { code: code(), percentOff: 10, duration: "repeating" },
      { code: code(), percentOff: 10, duration: "once", durationCycles: 2 },
      { code: "lower-case", percentOff: 10, duration: "once" },
      { code: code(), amountOff: 100, currency: "zzz", duration: "once" },
      { code: code(), percentOff: 10, duration: "once", note: "free text" },
    ]) {
      await expectProblem(await call("POST", "/coupons", bad), 400, "VALIDATION_FAILED");
    }
    const list = (await (await call("GET", "/coupons?archived=false")).json()) as { data: { code: string; timesRedeemed: number; maxRedemptions: number }[] };
    expect(list.data.find((x) => x.code === c)).toMatchObject({ timesRedeemed: 0, maxRedemptions: 5 });
    const archived = await call("POST", `/coupons/${c}/archive`);
    expect(((await archived.json()) as { archivedAt: string | null }).archivedAt).not.toBeNull();
    await expectProblem(await call("POST", `/coupons/${code()}/archive`), 404, "NOT_FOUND");
    await expectProblem(await call("GET", "/coupons", undefined, "office_admin"), 403, "FORBIDDEN");
  });
});

describe("an office's discount at the close (payment-plan §6.10)", () => {
  it("10 % forever: a discount line after the other lines on every closed invoice, the same total on Stripe, shown in the preview", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01", plan: { baseFee: 4900 } });
    const c = await coupon({ percentOff: 10, duration: "forever" });
    const applied = await apply(officeId, c);
    expect(applied.status, await applied.clone().text()).toBe(201);
    expect(await applied.json()).toMatchObject({ couponCode: c, percentOff: 10, duration: "forever", invoicesUsed: 0 });
    // The draft has no discount line; the preview shows the one the close adds.
    const preview = (await (await call("GET", `/offices/${officeId}/invoices/upcoming`)).json()) as { total: number; lines: { kind: string; description: string; amount: number }[] };
    expect(preview.lines.filter((l) => l.kind === "discount")).toEqual([expect.objectContaining({ description: "Discount — Sep 2026", amount: -490 })]);
    expect(preview.total).toBe(4410);
    await runInvoicing([officeId], "2026-11-01T06:00:00Z");
    expect(await lines(officeId)).toEqual([
      ["2026-09-01", "open", 4410, [["Discount — Sep 2026", -490]]],
      ["2026-10-01", "open", 4410, [["Discount — Oct 2026", -490]]],
      ["2026-11-01", "draft", 4900, []],
    ]);
    // Stripe's invoice has the same lines and total (read through the SDK's types).
    await syncStripe(officeId);
    const [sep] = (await invoiceRows(officeId)).filter((i) => i.kind === "monthly");
    const stripeId = (await stripeLog(officeId)).find((r) => r.idempotencyKey === `invoice_${sep!.id}_create`)!.stripeIds![0]!;
    const stripeInvoice = await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`);
    expect(stripeInvoice.amount_due).toBe(4410);
    expect(stripeInvoice.lines.data.map((l) => [l.description, l.amount])).toContainEqual(["Discount — Sep 2026", -490]);
    const office = (await (await call("GET", `/offices/${officeId}`)).json()) as { discount: { invoicesUsed: number } | null };
    expect(office.discount).toMatchObject({ invoicesUsed: 2 });
  });

  it("once: the first invoice that charges uses it (a trial cycle waits), then it ends", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-08-01", plan: { baseFee: 4900, trialDays: 31 } });
    expect((await apply(officeId, await coupon({ percentOff: 15, duration: "once" }))).status).toBe(201);
    await runInvoicing([officeId], "2026-10-01T06:00:00Z");
    expect(await lines(officeId)).toEqual([
      ["2026-08-01", "paid", 0, []],
      ["2026-09-01", "open", 4165, [["Discount — Sep 2026", -735]]],
      ["2026-10-01", "draft", 4900, []],
    ]);
    const office = (await (await call("GET", `/offices/${officeId}`)).json()) as { discount: unknown };
    expect(office.discount).toBeNull();
    await runInvoicing([officeId], "2026-11-01T06:00:00Z");
    expect((await lines(officeId))[2]).toEqual(["2026-10-01", "open", 4900, []]);
  });

  it("an amount is capped at the subtotal: a zero invoice, recorded paid and never sent", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01", plan: { baseFee: 4900 } });
    expect((await apply(officeId, await coupon({ amountOff: 10_000, currency: "usd", duration: "repeating", durationCycles: 3 }))).status).toBe(201);
    await runInvoicing([officeId], "2026-10-01T06:00:00Z");
    expect((await lines(officeId))[0]).toEqual(["2026-09-01", "paid", 0, [["Discount — Sep 2026", -4900]]]);
    await syncStripe(officeId);
    expect((await stripeLog(officeId)).filter((r) => r.operation === "invoice")).toEqual([]);
  });

  it("refuses a second discount, an expired, archived or exhausted coupon, another currency, an unknown code; removal ends it", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01" });
    const other = await onboardOffice({ startsOn: "2026-09-01" });
    const single = await coupon({ percentOff: 5, duration: "forever", maxRedemptions: 1 });
    expect((await apply(other, single)).status).toBe(201);
    await expectProblem(await apply(officeId, single), 409, "CONFLICT");
    await expectProblem(await apply(officeId, await coupon({ percentOff: 5, duration: "forever", redeemBy: "2026-01-01T00:00:00Z" })), 409, "CONFLICT");
    await expectProblem(await apply(officeId, await coupon({ amountOff: 500, currency: "eur", duration: "once" })), 409, "CONFLICT");
    const archived = await coupon({ percentOff: 5, duration: "once" });
    await call("POST", `/coupons/${archived}/archive`);
    await expectProblem(await apply(officeId, archived), 409, "CONFLICT");
    await expectProblem(await apply(officeId, code()), 404, "NOT_FOUND");
    await expectProblem(await call("POST", `/offices/${officeId}/discount`, { couponCode: "bad code" }), 400, "VALIDATION_FAILED");
    const c = await coupon({ percentOff: 20, duration: "forever" });
    expect((await apply(officeId, c)).status).toBe(201);
    await expectProblem(await apply(officeId, await coupon({ percentOff: 5, duration: "once" })), 409, "CONFLICT");
    await expectProblem(await call("POST", `/offices/${officeId}/discount`, { couponCode: c }, "office_admin", [officeId]), 403, "FORBIDDEN");
    expect((await call("DELETE", `/offices/${officeId}/discount`)).status).toBe(204);
    await expectProblem(await call("DELETE", `/offices/${officeId}/discount`), 404, "NOT_FOUND");
    await runInvoicing([officeId], "2026-10-01T06:00:00Z");
    expect((await lines(officeId))[0]![3]).toEqual([]);
  });
});
