import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config";
import { stripeRequests } from "../../../src/db/stripe-requests";
import { newId } from "../../../src/security/request-id";
import { stripeGateway } from "../../../src/stripe/gateway";
import { testDb } from "../../harness/seed";

async function emulatorLog(): Promise<{ method: string; path: string; body: string }[]> {
  const res = await fetch(new URL("/_emulator/requests", env.STRIPE_API_BASE!));
  return ((await res.json()) as { data: { method: string; path: string; body: string }[] }).data;
}

function gateway(officeId: string, blocked: unknown[] = []) {
  return stripeGateway({
    config: loadConfig(env),
    db: testDb(),
    officeId,
    requestId: newId("req"),
    guard: { billingEmail: "billing@lakeside.example", periodDates: ["2026-11-01", "2026-12-01"] },
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
        { id: newId("il"), description: "Active patients — Nov 2026", amount: 130_400 },
        { id: newId("il"), description: "Platform fee — Nov 2026", amount: 4900 },
        { id: newId("il"), description: "Training", amount: 15000 },
      ],
    };
    const finalized = await g.pushInvoice(customer.id, invoice);
    expect(finalized.status === "open" || finalized.status === "paid").toBe(true);
    expect(finalized.amountDue).toBe(130_400 + 4900 + 15000);
    // Other test files use the emulator too: count this invoice's requests only.
    const mine = (await emulatorLog()).filter((r) => r.body.includes(invoice.id) || r.path.includes(finalized.id));
    expect(mine.map((r) => r.path)).toEqual(["/v1/invoices", `/v1/invoices/${finalized.id}/add_lines`, `/v1/invoices/${finalized.id}/finalize`]);

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
      g.pushInvoice(customer.id, { id: invoiceId, currency: "usd", periodStart: "2026-11-01", periodEnd: "2026-12-01", lines: [{ id: newId("il"), description: "Visit for Jane Roe", amount: 100 }] }),
    ).rejects.toThrow(/fixed line template/);
    expect((await emulatorLog()).filter((r) => r.body.includes(invoiceId))).toEqual([]);
  });
});
