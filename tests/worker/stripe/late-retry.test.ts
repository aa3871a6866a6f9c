import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { setClock } from "../../../src/clock";
import { onboardOffice } from "../../harness/billing";
import { ageStripeKeys, clearFaultRule, emulatorLog, faultRule, invoiceRows, letters, stripeLog, stripeObject, syncStripe, until } from "../../harness/stripe";

const HOUR = 3_600_000;

/**
 * docs/architecture.md, "Creates past Stripe's 24 hours": a create whose first attempt reached
 * Stripe but whose answer was lost, retried after Stripe forgot its idempotency key, adopts the
 * object Stripe made (found by our reference) instead of making a second one.
 */
describe("a create retried after Stripe's 24-hour key memory", () => {
  it("adopts the customer and the invoice the lost first attempts made: one of each at Stripe", async () => {
    const token = letters(); // in the customer create's body (the e-mail), which is form-encoded
    const email = `billing+${token}@harbor.example`;
    // 1. Every customer create for this office reaches Stripe, which makes the customer, but the answer is lost.
    await faultRule(token, ["drop_response"]);
    const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 25_000 }, billingEmail: email });
    const setup = (await invoiceRows(officeId)).find((i) => i.kind === "setup")!;
    try {
      // The outbox's alarm or this run: three attempts within the run, each answer lost.
      await syncStripe(officeId);
      const customerAttempts = await until("three lost customer creates", async () => {
        const rows = (await stripeLog(officeId)).filter((r) => r.operation === "customer");
        return rows.length >= 3 ? rows : null;
      });
      expect(customerAttempts.every((r) => r.status === "failed")).toBe(true);
      const ours = async () => (await stripeObject<Stripe.ApiSearchResult<Stripe.Customer>>(`/v1/customers/search?query=${encodeURIComponent(`metadata['office_ref']:'${officeId}'`)}`)).data;
      expect(await ours()).toHaveLength(1); // Stripe has it; we never learned its id

      // 2. A day and more later: Stripe has forgotten the key; our clock has moved on as much.
      expect(await ageStripeKeys(`customer_${officeId}`, 25 * 3600)).toBe(1);
      const start = Date.now();
      setClock(() => Date.now() + 25 * HOUR);
      await clearFaultRule(token);
      // This time the invoice create reaches Stripe and its answer is lost (its body names the office).
      await faultRule(officeId, ["drop_response"]);
      const second = await syncStripe(officeId);
      expect(second.retrying).toContain(setup.id);
      expect(await ours()).toHaveLength(1); // adopted, not created again
      const customerId = (await ours())[0]!.id;
      const invoicesAt = async () => (await stripeObject<Stripe.ApiList<Stripe.Invoice>>(`/v1/invoices?customer=${customerId}&limit=100`)).data;
      expect((await invoicesAt()).map((i) => i.metadata?.invoice_ref)).toEqual([setup.id]);
      expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)!.stripeInvoiceRef).toBeNull();

      // 3. Another day later: the invoice's key is forgotten too; the push adopts the draft Stripe made.
      expect(await ageStripeKeys(`invoice_${setup.id}_create`, 25 * 3600)).toBe(1);
      setClock(() => Date.now() + 50 * HOUR);
      await clearFaultRule(officeId);
      const third = await until("the push to complete", async () => {
        const r = await syncStripe(officeId);
        return (await invoiceRows(officeId)).find((i) => i.id === setup.id)!.stripeState === "finalized" ? r : null;
      });
      expect(third.failed).toEqual([]);
      const atStripe = await invoicesAt();
      expect(atStripe).toHaveLength(1);
      const invoice: Stripe.Invoice = atStripe[0]!;
      expect(invoice.status).not.toBe("draft");
      expect(invoice.amount_due).toBe(setup.total);
      expect(invoice.lines.data.map((l) => [l.description, l.amount])).toEqual([["Setup fee", 25_000]]);
      expect(await ours()).toHaveLength(1);

      // Our request log shows the look-ups; the emulator saw each create executed once, never twice.
      const log = await stripeLog(officeId);
      expect(log.some((r) => r.operation === "findCustomer" && r.status === "succeeded")).toBe(true);
      expect(log.some((r) => r.operation === "findInvoice" && r.status === "succeeded")).toBe(true);
      const creates = (await emulatorLog()).filter((e) => e.method === "POST" && (e.idempotencyKey === `customer_${officeId}` || e.idempotencyKey === `invoice_${setup.id}_create`));
      // (replays of a live key answer the saved result; the retries past 24 hours looked up instead)
      expect(creates.filter((e) => !e.replayed).map((e) => [e.idempotencyKey, e.status])).toEqual([
        [`customer_${officeId}`, "dropped"],
        [`invoice_${setup.id}_create`, "dropped"],
      ]);
      expect(Date.now() - start).toBeLessThan(24 * HOUR); // the days passed on the clocks only
    } finally {
      setClock();
      await clearFaultRule(token);
      await clearFaultRule(officeId);
    }
  });

  it("does not look up within the 24 hours: a retry replays its key", async () => {
    const token = letters();
    const email = `billing+${token}@harbor.example`;
    await faultRule(token, ["drop_response"], 1);
    const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 25_000 }, billingEmail: email });
    try {
      await until("the setup invoice on Stripe", async () => {
        await syncStripe(officeId);
        return (await invoiceRows(officeId)).find((i) => i.kind === "setup")!.stripeState === "finalized";
      });
      const log = await stripeLog(officeId);
      expect(log.filter((r) => r.operation === "customer").map((r) => r.status)).toEqual(["failed", "succeeded"]);
      expect(log.some((r) => r.operation === "findCustomer" || r.operation === "findInvoice")).toBe(false);
      const replayed = (await emulatorLog()).filter((e) => e.idempotencyKey === `customer_${officeId}` && e.replayed);
      expect(replayed).toHaveLength(1);
    } finally {
      await clearFaultRule(token);
    }
  });
});
