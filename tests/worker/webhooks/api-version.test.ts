import { SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { auditLog } from "../../../src/db/audit";
import { invoices } from "../../../src/db/invoices";
import { webhookEvents } from "../../../src/db/webhook-events";
import { STRIPE_API_VERSION } from "../../../src/stripe/client";
import { bearer, mintToken } from "../../harness/auth";
import { testDb } from "../../harness/seed";
import { pushedOffice, syncStripe } from "../../harness/stripe";
import { deliver, emulatorEvents, invoiceObject, stripeEvent } from "../../harness/webhooks";

/**
 * Issue 15, part B: an event rendered with another API version than the pinned one is never read
 * by guess. It is acknowledged (200: Stripe would send the same rendering on every retry),
 * recorded as `rejected` / `api_version_mismatch` without an office, audited and logged.
 */

const api = "https://billing.test/v1";
const admin = async () => ({ ...bearer(await mintToken("platform_admin")), "content-type": "application/json" });
const eventRow = async (id: string) => (await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, id)))[0];
const errorLines = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map((args) => String(args[0])).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

afterEach(() => void vi.restoreAllMocks());

describe("webhook events of another API version", () => {
  it("an invoice.paid of an older version naming a real office's invoice is rejected, recorded, audited, logged and never applied", async () => {
    const o = await pushedOffice({ decline: true, setupFee: 6_300, attempted: true });
    const errors = vi.spyOn(console, "error");
    for (const apiVersion of ["2024-06-20", "2026-01-28.clover", null]) {
      const event = { ...stripeEvent("invoice.paid", invoiceObject({ stripeId: o.stripeId, customer: o.customerId, officeId: o.officeId, invoiceId: o.setup.id, status: "paid", amount: 6_300 })), api_version: apiVersion };
      const res = await deliver(event);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ received: true, duplicate: false, status: "rejected" });
      // Recorded without an office: its data was not read, not even to find one.
      expect(await eventRow(event.id)).toMatchObject({ status: "rejected", error: "api_version_mismatch", officeId: null, stripeObjectId: null, type: "invoice.paid" });
      const audits = await testDb().select().from(auditLog).where(and(eq(auditLog.action, "webhook.rejected"), eq(auditLog.chain, "platform")));
      expect(audits.some((a) => a.outcome === "rejected" && (a.targetIds as string[]).includes(event.id) && (a.details as Record<string, unknown>).reason === "api_version_mismatch" && (a.details as Record<string, unknown>).apiVersion === apiVersion)).toBe(true);
      const logged = errorLines(errors).find((l) => l.eventId === event.id);
      expect(logged).toMatchObject({ level: "error", reason: "api_version_mismatch", apiVersion, expected: STRIPE_API_VERSION });
      // A repeat delivery is a duplicate; a replay is refused (no office to apply it to).
      expect(await (await deliver(event)).json()).toMatchObject({ duplicate: true });
      const replay = await SELF.fetch(`${api}/admin/webhook-events/${event.id}/replay`, { method: "POST", headers: await admin() });
      expect(replay.status).toBe(409);
    }
    await syncStripe(o.officeId);
    const [inv] = await testDb().select().from(invoices).where(eq(invoices.id, o.setup.id));
    expect(inv).toMatchObject({ status: "open", amountPaid: 0 });
  });

  it("the emulator's own events carry the pinned version and are accepted", async () => {
    const o = await pushedOffice({ decline: true, setupFee: 6_300, attempted: true });
    const events = await emulatorEvents(o.setup.id);
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect((e as unknown as { api_version: string }).api_version).toBe(STRIPE_API_VERSION);
      const res = await deliver(e);
      expect(((await res.json()) as { status: string }).status).not.toBe("rejected");
      expect((await eventRow(e.id))?.error).not.toBe("api_version_mismatch");
    }
  });
});
