import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config";
import { stripeRequests } from "../../../src/db/stripe-requests";
import { newId } from "../../../src/security/request-id";
import { backoffDelay, isRetryable, StripeCallError, stripeGateway } from "../../../src/stripe/gateway";
import { clearFaultRule, faultRule, letters, until } from "../../harness/stripe";
import { testDb } from "../../harness/seed";

async function emulatorLog(): Promise<{ method: string; path: string; body: string }[]> {
  const res = await fetch(new URL("/_emulator/requests", env.STRIPE_API_BASE!));
  return ((await res.json()) as { data: { method: string; path: string; body: string }[] }).data;
}

function gateway(officeId: string, blocked: unknown[] = [], { billingEmail = "billing@lakeside.example", ...extra }: { attempts?: number; backoffMs?: number; billingEmail?: string } = {}) {
  return stripeGateway({
    ...extra,
    config: loadConfig(env),
    db: testDb(),
    officeId,
    requestId: newId("req"),
    guard: { billingEmail, periodDates: ["2026-11-01", "2026-12-01"] },
    onBlocked: async (d) => void blocked.push(d),
  });
}

const office = () => ({ id: newId("off"), legalName: "Lakeside Family Practice LLC", billingEmail: "billing@lakeside.example" });

describe("the Stripe gateway", () => {
  it("pushes an invoice in three calls whatever its size, with deterministic idempotency keys, all logged", async () => {
    const o = office();
    const g = gateway(o.id);
    const customer = await g.ensureCustomer(o);
    const invoice = {
      id: newId("inv"),
      currency: "usd",
      periodStart: "2026-11-01",
      periodEnd: "2026-12-01",
      lines: [
        { id: newId("il"), description: "Active patients 1–50 — Nov 2026", amount: 40_000, quantity: 50, unitAmount: 800 },
        { id: newId("il"), description: "Active patients 51–200 — Nov 2026", amount: 90_000, quantity: 150, unitAmount: 600 },
        { id: newId("il"), description: "Active patients 201+ — Nov 2026", amount: 400, quantity: 1, unitAmount: 400 },
        { id: newId("il"), description: "Platform fee — Nov 2026", amount: 4900, quantity: 1, unitAmount: null },
        { id: newId("il"), description: "Training", amount: 15000, quantity: 1, unitAmount: null },
      ],
    };
    const finalized = await g.pushInvoice(customer.id, invoice);
    expect(finalized.status === "open" || finalized.status === "paid").toBe(true);
    expect(finalized.amountDue).toBe(130_400 + 4900 + 15000);
    // Other test files use the emulator too: count this invoice's requests only.
    const mine = (await emulatorLog()).filter((r) => r.body.includes(invoice.id) || r.path.includes(finalized.id));
    expect(mine.map((r) => r.path)).toEqual(["/v1/invoices", `/v1/invoices/${finalized.id}/add_lines`, `/v1/invoices/${finalized.id}/finalize`]);
    // Tier lines go as quantity × unit price (an inline price), fixed lines as an amount: never both.
    const sent = new URLSearchParams(mine[1]!.body);
    expect([sent.get("lines[1][quantity]"), sent.get("lines[1][price_data][unit_amount]"), sent.get("lines[1][price_data][currency]"), sent.get("lines[1][amount]")]).toEqual(["150", "600", "usd", null]);
    expect([sent.get("lines[3][amount]"), sent.get("lines[3][quantity]"), sent.get("lines[3][price_data][unit_amount]")]).toEqual(["4900", null, null]);

    const rows = await testDb().select().from(stripeRequests).where(eq(stripeRequests.officeId, o.id));
    expect(rows.map((r) => [r.operation, r.status, r.idempotencyKey])).toEqual([
      ["customer", "succeeded", `customer_${o.id}`],
      ["invoice", "succeeded", `invoice_${invoice.id}_create`],
      ["addLines", "succeeded", `invoice_${invoice.id}_lines`],
      ["finalize", "succeeded", `invoice_${invoice.id}_finalize`],
    ]);
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.bodySha256))).toBe(true);

    // Pushed again (a retried job): Stripe replays by key, no second invoice.
    const again = await g.pushInvoice(customer.id, invoice);
    expect(again.id).toBe(finalized.id);
  });

  it("ensures the customer once: a repeat returns the same Stripe customer", async () => {
    const o = office();
    const g = gateway(o.id);
    expect((await g.ensureCustomer(o)).id).toBe((await g.ensureCustomer(o)).id);
  });

  it("fails closed on an identifier: nothing sent, the block logged and reported", async () => {
    const o = { ...office(), legalName: "Lakeside — call Jane at (555) 123-4567" };
    const blocked: { operation: string; kinds: string[] }[] = [];
    await expect(gateway(o.id, blocked).ensureCustomer(o)).rejects.toMatchObject({ code: "UNPROCESSABLE" });
    expect(blocked).toEqual([{ operation: "customer", kinds: ["phone"], fields: ["name"] }]);
    const [row] = await testDb().select().from(stripeRequests).where(eq(stripeRequests.officeId, o.id));
    expect(row).toMatchObject({ status: "blocked", errorCode: "phi_egress_blocked", operation: "customer" });
    const after = await emulatorLog();
    expect(after.filter((r) => r.body.includes(o.id))).toEqual([]);
    expect(JSON.stringify(after)).not.toContain("123-4567");
  });

  it("refuses line descriptions outside the fixed templates before the first call", async () => {
    const o = office();
    const g = gateway(o.id);
    const customer = await g.ensureCustomer(o);
    const invoiceId = newId("inv");
    await expect(
      g.pushInvoice(customer.id, { id: invoiceId, currency: "usd", periodStart: "2026-11-01", periodEnd: "2026-12-01", lines: [{ id: newId("il"), description: "Visit for Jane Roe", amount: 100, quantity: 1, unitAmount: null }] }),
    ).rejects.toThrow(/fixed line template/);
    expect((await emulatorLog()).filter((r) => r.body.includes(invoiceId))).toEqual([]);
  });
});

describe("gateway retries", () => {
  it("retries 429, 5xx and timeouts with backoff under the same key, and succeeds when Stripe recovers", async () => {
    const o = { ...office(), legalName: `Retry ${letters()} Clinic` };
    const token = o.legalName.split(" ")[1]!;
    await faultRule(token, ["500", "429"], 2);
    const g = gateway(o.id, [], { attempts: 3, backoffMs: 20 });
    const customer = await g.ensureCustomer(o);
    expect(customer.id).toMatch(/^cus_/);
    const rows = await testDb().select().from(stripeRequests).where(eq(stripeRequests.officeId, o.id));
    expect(rows.map((r) => r.status)).toEqual(["failed", "failed", "succeeded"]);
    expect(new Set(rows.map((r) => r.idempotencyKey))).toEqual(new Set([`customer_${o.id}`]));
    expect(g.calls).toBe(3);
  });

  it("retries a request that timed out (no answer), under the same key", async () => {
    const o = { ...office(), legalName: `Slow ${letters()} Clinic` };
    await faultRule(o.legalName.split(" ")[1]!, ["timeout"], 1);
    const g = gateway(o.id, [], { attempts: 2, backoffMs: 10 });
    expect((await g.ensureCustomer(o)).id).toMatch(/^cus_/);
    const rows = await testDb().select().from(stripeRequests).where(eq(stripeRequests.officeId, o.id));
    expect(rows.map((r) => [r.status, r.errorCode])).toEqual([
      ["failed", "connection_error"],
      ["succeeded", null],
    ]);
  });

  it("gives up after its attempts with a retryable error, and at once on a refusal", async () => {
    const o = { ...office(), legalName: `Down ${letters()} Clinic` };
    const token = o.legalName.split(" ")[1]!;
    await faultRule(token, ["500"]);
    try {
      const err = await gateway(o.id, [], { attempts: 2, backoffMs: 10 }).ensureCustomer(o).catch((e) => e);
      expect(err).toBeInstanceOf(StripeCallError);
      expect(err).toMatchObject({ retryable: true, code: "api_error", httpStatus: 500 });
    } finally {
      await clearFaultRule(token);
    }
    // A Stripe refusal (unknown customer: 404) is not retried.
    const g = gateway(o.id, [], { attempts: 3, backoffMs: 10 });
    const invoice = { id: newId("inv"), currency: "usd", periodStart: "2026-11-01", periodEnd: "2026-12-01", lines: [{ id: newId("il"), description: "Setup fee", amount: 100, quantity: 1, unitAmount: null }] };
    const refused = await g.createDraft("cus_doesnotexist42", invoice).catch((e) => e);
    expect(refused).toMatchObject({ retryable: false, code: "resource_missing", httpStatus: 404 });
    const rows = await testDb().select().from(stripeRequests).where(eq(stripeRequests.idempotencyKey, `invoice_${invoice.id}_create`));
    expect(rows).toHaveLength(1);
  });

  it("retries a 429 lock_timeout (another request writes the same object) under the same key, and succeeds once the lock is free", async () => {
    // This customer has no payment method: a payment attempt fails and the invoice stays open on Stripe.
    const o = { ...office(), billingEmail: "billing+decline@lakeside.example" };
    const g = gateway(o.id, [], { attempts: 6, backoffMs: 250, billingEmail: o.billingEmail });
    const customer = await g.ensureCustomer(o);
    const invoice = { id: newId("inv"), currency: "usd", periodStart: "2026-11-01", periodEnd: "2026-12-01", lines: [{ id: newId("il"), description: "Setup fee", amount: 2500, quantity: 1, unitAmount: null }] };
    const pushed = await g.pushInvoice(customer.id, invoice);
    const emulator = (path: string, init?: RequestInit) => fetch(new URL(path, env.STRIPE_API_BASE!), init);
    // Someone else (a payment retry from the Dashboard) writes the invoice and holds its lock for 1.5 s (scoped to that request).
    await emulator("/_emulator/locks", { method: "POST", body: JSON.stringify({ match: `${pushed.id}/pay`, windowMs: 1500 }) });
    try {
      const other = emulator(`/v1/invoices/${pushed.id}/pay`, { method: "POST", headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}` } });
      await until(`the lock on ${pushed.id}`, async () => ((await (await emulator("/_emulator/locks")).json()) as { held: string[] }).held.includes(pushed.id));
      const voided = await g.voidInvoice(pushed.id, invoice.id);
      expect(voided.status).toBe("void");
      expect((await other).status).toBe(400); // refused for want of a payment method: the invoice was still open when it ran
    } finally {
      await emulator("/_emulator/locks", { method: "POST", body: JSON.stringify({ clear: `${pushed.id}/pay` }) });
    }
    const rows = (await testDb().select().from(stripeRequests).where(eq(stripeRequests.officeId, o.id))).filter((r) => r.operation === "void");
    expect(rows[0]).toMatchObject({ status: "failed", httpStatus: 429, errorCode: "lock_timeout" });
    expect(rows.at(-1)).toMatchObject({ status: "succeeded" });
    expect(new Set(rows.map((r) => r.idempotencyKey))).toEqual(new Set([`invoice_${invoice.id}_void`]));
    expect(isRetryable({ statusCode: 429, code: "lock_timeout" })).toBe(true);
  });

  it("classifies failures as Stripe documents them, Stripe-Should-Retry first", () => {
    expect(isRetryable({ statusCode: 429 })).toBe(true);
    expect(isRetryable({ statusCode: 503 })).toBe(true);
    expect(isRetryable({ statusCode: 409 })).toBe(true);
    expect(isRetryable({})).toBe(true); // no answer: connection error or timeout
    expect(isRetryable({ statusCode: 400 })).toBe(false);
    expect(isRetryable({ statusCode: 402 })).toBe(false);
    expect(isRetryable({ statusCode: 500, headers: { "stripe-should-retry": "false" } })).toBe(false);
    expect(isRetryable({ statusCode: 400, headers: { "stripe-should-retry": "true" } })).toBe(true);
  });

  it("backs off exponentially with jitter, capped", () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const ceiling = Math.min(60_000, 1000 * 2 ** (attempt - 1));
      for (let i = 0; i < 20; i++) {
        const d = backoffDelay(attempt, 1000, 60_000);
        expect(d).toBeGreaterThanOrEqual(ceiling / 2);
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });
});

// The service-wide pacer and Stripe's 429 through it: rate-limit.test.ts.
