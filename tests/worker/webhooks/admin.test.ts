import { createScheduledController, env, SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { invoices } from "../../../src/db/invoices";
import { webhookEvents } from "../../../src/db/webhook-events";
import { CRON_RECONCILIATION, handleScheduled } from "../../../src/jobs/scheduled";
import { bearer, mintToken } from "../../harness/auth";
import { expectProblem } from "../../harness/problem";
import { testDb } from "../../harness/seed";
import { pushedOffice as pushedOfficeOnStripe, invoiceRows, stripeLog, syncStripe, untilStripeAttempted } from "../../harness/stripe";
import { deliver, invoiceObject, stripeEvent } from "../../harness/webhooks";

const api = "https://billing.test/v1";
const admin = async () => ({ ...bearer(await mintToken("platform_admin")), "content-type": "application/json" });

const pushedOffice = (billingEmail = "billing@harbor.example") => pushedOfficeOnStripe({ setupFee: 12_000, decline: billingEmail.includes("+decline@") });

describe("reconciliation", () => {
  it("repairs a missed invoice.paid: Stripe's state is read and applied, and the run reports it", async () => {
    const { officeId, setup } = await pushedOffice();
    await untilStripeAttempted(setup.id); // Stripe collected it; its webhook never arrived.
    expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)!.status).toBe("open");
    const res = await SELF.fetch(`${api}/admin/reconciliation-runs`, { method: "POST", headers: await admin(), body: JSON.stringify({ officeIds: [officeId] }) });
    expect(res.status, await res.clone().text()).toBe(200);
    const report = (await res.json()) as { checked: number; changed: { invoiceId: string; from: string; to: string }[] };
    expect(report.checked).toBe(1);
    expect(report.changed).toEqual([{ officeId, invoiceId: setup.id, from: "open", to: "paid" }]);
    expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)).toMatchObject({ status: "paid", amountPaid: 12_000 });
    // Run again: nothing left to compare or change.
    const again = (await (await SELF.fetch(`${api}/admin/reconciliation-runs`, { method: "POST", headers: await admin(), body: JSON.stringify({ officeIds: [officeId] }) })).json()) as { checked: number; changed: unknown[] };
    expect(again).toMatchObject({ checked: 0, changed: [] });
  });

  it("runs daily from the Cron Trigger and leaves unpaid invoices open", async () => {
    const paid = await pushedOffice();
    const declined = await pushedOffice("billing+decline@harbor.example");
    for (const o of [paid, declined]) await untilStripeAttempted(o.setup.id);
    // The run looks at invoices that have sat still for an hour (fresh ones may have webhooks on the way).
    for (const o of [paid, declined]) await testDb().update(invoices).set({ updatedAt: Date.now() - 2 * 3_600_000 }).where(eq(invoices.id, o.setup.id));
    await handleScheduled(createScheduledController({ cron: CRON_RECONCILIATION, scheduledTime: Date.now() }), env);
    const status = async (id: string) => (await testDb().select().from(invoices).where(eq(invoices.id, id)))[0]!.status;
    expect(await status(paid.setup.id)).toBe("paid");
    expect(await status(declined.setup.id)).toBe("open");
  });

  it("refuses bad input with problem+json", async () => {
    await expectProblem(await SELF.fetch(`${api}/admin/reconciliation-runs`, { method: "POST", headers: await admin(), body: JSON.stringify({ officeIds: [] }) }), 400, "VALIDATION_FAILED");
    await expectProblem(await SELF.fetch(`${api}/admin/reconciliation-runs`, { method: "POST", headers: await admin(), body: JSON.stringify({ officeIds: ["nope"] }) }), 400, "VALIDATION_FAILED");
  });
});

describe("GET /v1/admin/webhook-events and replay", () => {
  it("lists recorded events by office, type and status, page by page", async () => {
    const { officeId, setup, stripeId } = await pushedOffice("billing+decline@harbor.example");
    const ids: string[] = [];
    for (const type of ["invoice.finalized", "invoice.payment_failed", "invoice.finalized"]) {
      const e = stripeEvent(type, invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "open", amount: 12_000 }));
      ids.push(e.id);
      await deliver(e);
    }
    await syncStripe(officeId);
    const page1 = await SELF.fetch(`${api}/admin/webhook-events?officeId=${officeId}&limit=2`, { headers: await admin() });
    expect(page1.status).toBe(200);
    const body1 = (await page1.json()) as { data: { id: string; status: string; type: string }[]; nextCursor: string | null };
    expect(body1.data).toHaveLength(2);
    expect(body1.nextCursor).not.toBeNull();
    const page2 = (await (await SELF.fetch(`${api}/admin/webhook-events?officeId=${officeId}&limit=2&cursor=${encodeURIComponent(body1.nextCursor!)}`, { headers: await admin() })).json()) as { data: { id: string }[]; nextCursor: string | null };
    // Besides these, the office's own checkout.session.completed (its card was put on file through the hosted setup page).
    const setupEvents = (await testDb().select().from(webhookEvents).where(eq(webhookEvents.officeId, officeId))).filter((r) => r.type === "checkout.session.completed").map((r) => r.id);
    expect(setupEvents).toHaveLength(1);
    expect([...body1.data, ...page2.data].map((e) => e.id).sort()).toEqual([...ids, ...setupEvents].sort());
    expect(page2.nextCursor).toBeNull();
    const failed = (await (await SELF.fetch(`${api}/admin/webhook-events?officeId=${officeId}&type=invoice.payment_failed&status=processed`, { headers: await admin() })).json()) as { data: { id: string }[] };
    expect(failed.data.map((e) => e.id)).toEqual([ids[1]]);
    await expectProblem(await SELF.fetch(`${api}/admin/webhook-events?status=bogus`, { headers: await admin() }), 400, "VALIDATION_FAILED");
    await expectProblem(await SELF.fetch(`${api}/admin/webhook-events?cursor=xyz`, { headers: await admin() }), 400, "VALIDATION_FAILED");
  });

  it("replays an event through its office: applied again, changing nothing already applied", async () => {
    const { officeId, setup, stripeId } = await pushedOffice("billing+decline@harbor.example");
    const e = stripeEvent("invoice.paid", invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "paid", amount: 12_000 }));
    await deliver(e);
    await syncStripe(officeId);
    const res = await SELF.fetch(`${api}/admin/webhook-events/${e.id}/replay`, { method: "POST", headers: await admin() });
    expect(res.status, await res.clone().text()).toBe(202);
    expect(await res.json()).toMatchObject({ id: e.id, status: "received" });
    await syncStripe(officeId);
    const [row] = await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, e.id));
    expect(row).toMatchObject({ status: "processed", attempts: 2 });
    expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)).toMatchObject({ status: "paid", amountPaid: 12_000 });
    await expectProblem(await SELF.fetch(`${api}/admin/webhook-events/evt_unknown1/replay`, { method: "POST", headers: await admin() }), 404, "NOT_FOUND");
    // An event without an office cannot be applied anywhere: 409.
    const orphan = stripeEvent("customer.updated", { id: "cus_orphan42", object: "customer", metadata: {} });
    await deliver(orphan);
    await expectProblem(await SELF.fetch(`${api}/admin/webhook-events/${orphan.id}/replay`, { method: "POST", headers: await admin() }), 409, "CONFLICT");
  });
});
