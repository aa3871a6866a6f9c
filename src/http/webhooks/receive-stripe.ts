import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { Database } from "../../db/client";
import { invoices } from "../../db/invoices";
import { offices } from "../../db/offices";
import { webhookEvents } from "../../db/webhook-events";
import { officeObject } from "../../office/client";
import { auditor } from "../../security/audit";
import { lookupIndex } from "../../security/crypto";
import { dataKeyring } from "../../security/data-keys";
import { stripeGateway } from "../../stripe/gateway";
import { isHandled, verifyStripeWebhook, WebhookRejected, type StripeEvent } from "../../stripe/webhooks";
import type { Config } from "../../config";
import type { App } from "../context";
import { ApiError, problemResponses } from "../problem";
import { WEBHOOK_PATH } from "../transport";
import * as clock from "../../clock";

export const route = createRoute({
  method: "post",
  path: WEBHOOK_PATH,
  tags: ["Webhooks"],
  summary: "Receive a Stripe event",
  description:
    "Called by Stripe, not by people: no bearer token; the raw body is verified with Stripe's signature scheme (`Stripe-Signature`, v1 HMAC-SHA256, 300 s tolerance) against `STRIPE_WEBHOOK_SECRET` and, while rotating, `STRIPE_WEBHOOK_SECRET_PREVIOUS`. Each event id is recorded once: a repeat delivery answers 200 and changes nothing; unknown types are acknowledged and recorded. The event is applied by the office's Durable Object right after the answer. Bodies up to 1 MiB.",
  request: { body: { required: true, content: { "application/json": { schema: z.object({}).passthrough().openapi("StripeEvent") } } } },
  responses: {
    200: {
      description: "Accepted (or a repeat delivery, `duplicate: true`).",
      content: { "application/json": { schema: z.object({ received: z.literal(true), duplicate: z.boolean(), status: z.string() }).openapi("WebhookAck") } },
    },
    ...problemResponses(400, 413, 415, 503),
  },
});

const OFFICE_REF = /^off_[0-9a-f]{32}$/;

/**
 * The office an event is about: our reference in the object's metadata, else the keyed index of
 * the Stripe invoice or customer it names (one round trip), else — for a dispute, which names only
 * a charge — the charge's customer as Stripe reports it.
 */
async function officeOf(db: Database, config: Config, event: StripeEvent, requestId: string): Promise<string | null> {
  const obj = event.data.object;
  const metadataRef = (obj.metadata as Record<string, unknown> | undefined)?.office_ref;
  const ring = await dataKeyring(config);
  const str = (v: unknown) => (typeof v === "string" ? v : v && typeof v === "object" && typeof (v as { id?: unknown }).id === "string" ? (v as { id: string }).id : null);
  const invoiceId = event.type.startsWith("invoice.") ? str(obj.id) : str(obj.invoice);
  let customerId = event.type.startsWith("customer.") ? str(obj.id) : str(obj.customer);
  if (!invoiceId && !customerId && event.type.startsWith("charge.dispute.") && str(obj.charge) && config.STRIPE_SECRET_KEY) {
    try {
      const gateway = stripeGateway({ config, db, officeId: "", requestId, guard: { billingEmail: "", periodDates: [] }, onBlocked: async () => {} });
      customerId = (await gateway.readCharge(str(obj.charge)!)).customer;
    } catch {
      // Recorded without an office; a replay resolves it once Stripe answers.
    }
  }
  const candidates = [
    typeof metadataRef === "string" && OFFICE_REF.test(metadataRef) ? sql`SELECT id AS office_id FROM ${offices} WHERE id = ${metadataRef}` : null,
    invoiceId ? sql`SELECT office_id FROM ${invoices} WHERE stripe_invoice_index = ${await lookupIndex(ring, "stripe_invoice", invoiceId)}` : null,
    customerId ? sql`SELECT id AS office_id FROM ${offices} WHERE stripe_customer_index = ${await lookupIndex(ring, "stripe_customer", customerId)}` : null,
  ].filter((q) => q !== null);
  if (candidates.length === 0) return null;
  const rows = await db.all<{ office_id: string }>(sql`${sql.join(candidates, sql` UNION ALL `)} LIMIT 1`);
  return rows[0]?.office_id ?? null;
}

export function register(app: App) {
  app.openapi(route, async (c) => {
    const config = c.var.config;
    const secrets = [config.STRIPE_WEBHOOK_SECRET, config.STRIPE_WEBHOOK_SECRET_PREVIOUS].filter((s): s is string => !!s);
    if (secrets.length === 0) throw new ApiError("SERVICE_UNAVAILABLE", "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).");
    const raw = await c.req.text();
    let event: StripeEvent;
    try {
      event = await verifyStripeWebhook(raw, c.req.header("stripe-signature") ?? null, secrets);
    } catch (err) {
      if (!(err instanceof WebhookRejected)) throw err;
      await auditor(c.env, null, c.var.requestId).platform({ action: "webhook.rejected", outcome: "failed", officeId: null, details: { reason: err.reason } });
      if (err.reason === "malformed_payload") throw new ApiError("BAD_REQUEST", err.message);
      throw new ApiError("WEBHOOK_SIGNATURE_INVALID", err.message);
    }
    const db = c.var.db;
    const officeId = await officeOf(db, config, event, c.var.requestId);
    const handled = isHandled(event.type);
    const status = handled && officeId ? "received" : "ignored";
    const obj = event.data.object;
    const inserted = await db
      .insert(webhookEvents)
      .values({
        id: event.id,
        type: event.type,
        officeId,
        stripeObjectId: typeof obj.id === "string" ? obj.id : null,
        status,
        stripeCreatedAt: event.created * 1000,
        payload: event,
        error: handled ? (officeId ? null : "office_unknown") : "unhandled_type",
        receivedAt: clock.now(),
      })
      .onConflictDoNothing()
      .returning({ id: webhookEvents.id });
    if (inserted.length === 0) return c.json({ received: true as const, duplicate: true, status: "duplicate" }, 200);
    if (status === "received") {
      // Arms the office's outbox, which applies the event; the answer does not wait for it.
      await officeObject(c.env, officeId!).kickStripe();
    } else {
      await auditor(c.env, null, c.var.requestId).platform({ action: "webhook.recorded", outcome: "ignored", officeId, targetIds: [event.id], details: { type: event.type, reason: handled ? "office_unknown" : "unhandled_type" } });
    }
    return c.json({ received: true as const, duplicate: false, status }, 200);
  });
}
