import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { Database } from "../../db/client";
import { invoices } from "../../db/invoices";
import { offices } from "../../db/offices";
import { refunds } from "../../db/refunds";
import { webhookEvents } from "../../db/webhook-events";
import { officeObject } from "../../office/client";
import { auditor } from "../../security/audit";
import { refuse } from "../../security/refusals";
import { lookupIndexes } from "../../security/crypto";
import { indexIn } from "../../security/data-keys";
import { dataKeyring } from "../../security/data-keys";
import { stripeGateway } from "../../stripe/gateway";
import { isHandled, isRefundEvent, verifyStripeWebhook, WEBHOOK_API_VERSION, WebhookRejected, type StripeEvent } from "../../stripe/webhooks";
import type { Config } from "../../config";
import type { Context } from "hono";
import type { App, AppEnv } from "../context";
import { ApiError, problemResponses } from "../problem";
import { WEBHOOK_PATH } from "../transport";
import * as clock from "../../clock";

export const route = createRoute({
  method: "post",
  path: WEBHOOK_PATH,
  operationId: "receiveStripeWebhook",
  tags: ["Webhooks"],
  // Public: no token; Stripe's signature authenticates the delivery.
  security: [],
  summary: "Receive a Stripe event",
  description:
    "Called by Stripe, not by people: no bearer token; the raw body is verified with Stripe's signature scheme (`Stripe-Signature`, v1 HMAC-SHA256, 300 s tolerance) against `STRIPE_WEBHOOK_SECRET` and, while rotating, `STRIPE_WEBHOOK_SECRET_PREVIOUS`. Each event id is recorded once: a repeat delivery answers 200 and changes nothing; unknown types are acknowledged and recorded. An event rendered with another API version than the pinned one (`api_version` ≠ `" + WEBHOOK_API_VERSION + "`, e.g. an endpoint created without pinning it) is `rejected` (`api_version_mismatch`): acknowledged with 200 (a retry would bring the same rendering), recorded without an office, audited, logged at error level, never read further. The event is bound to an office only through a Stripe id we stored (invoice, else customer; a refund event: the refund's Stripe id, else its charge's customer as Stripe reports it); metadata references that disagree with it make the event `rejected` (`binding_mismatch`: acknowledged, recorded, audited, never applied). The event is applied by the office's Durable Object right after the answer. Bodies up to 1 MiB.",
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
const INVOICE_REF = /^inv_[0-9a-f]{32}$/;

/** How an event is bound to an office: through a Stripe id we recorded, or refused because its metadata disagrees. */
export type Binding =
  | { kind: "bound"; officeId: string | null }
  | { kind: "mismatch"; officeId: string; field: "office_ref" | "invoice_ref" | "customer"; hinted: string };

/**
 * The office an event is about, found only through a Stripe id we recorded ourselves: the keyed
 * index of the Stripe invoice it names, else of the Stripe customer, else — for a dispute, which
 * names only a charge — the charge's customer as Stripe itself reports it. Our references in the
 * object's metadata are never used to find anything (anyone who can edit a Stripe object can set
 * them); they are compared with what the stored ids say, and any disagreement is a `mismatch`.
 * One round trip to the database.
 */
export async function bindEvent(db: Database, config: Config, event: StripeEvent, requestId: string): Promise<Binding> {
  const obj = event.data.object;
  const metadata = (obj.metadata && typeof obj.metadata === "object" ? obj.metadata : {}) as Record<string, unknown>;
  const ring = await dataKeyring(config);
  const str = (v: unknown) => (typeof v === "string" ? v : v && typeof v === "object" && typeof (v as { id?: unknown }).id === "string" ? (v as { id: string }).id : null);
  const invoiceId = event.type.startsWith("invoice.") ? str(obj.id) : str(obj.invoice);
  // A detached payment method no longer names its customer: the one it was detached from does.
  let customerId = event.type.startsWith("customer.")
    ? str(obj.id)
    : (str(obj.customer) ?? (event.type === "payment_method.detached" ? str((event.data as { previous_attributes?: Record<string, unknown> }).previous_attributes?.customer) : null));
  // A refund names neither invoice nor customer: a refund we made is found by its Stripe id
  // (stored); any other through its charge's customer as Stripe reports it (docs/payment-plan.md §9.6).
  const refundId = isRefundEvent(event.type) ? str(obj.id) : null;
  if (refundId) {
    const [ours] = await db.all<{ office_id: string }>(sql`SELECT office_id FROM ${refunds} WHERE ${indexIn("stripe_refund_index", await lookupIndexes(ring, "stripe_refund", refundId))}`);
    if (ours) return bindRefundOffice(ours.office_id, metadata);
  }
  if (!invoiceId && !customerId && (event.type.startsWith("charge.dispute.") || refundId) && str(obj.charge) && config.STRIPE_SECRET_KEY) {
    try {
      const gateway = stripeGateway({ config, db, officeId: "", requestId, guard: { billingEmail: "", periodDates: [] }, onBlocked: async () => {} });
      customerId = (await gateway.readCharge(str(obj.charge)!)).customer;
    } catch {
      // Recorded without an office; a replay resolves it once Stripe answers.
    }
  }
  const lookups = [
    invoiceId ? sql`SELECT 'invoice' AS via, office_id, id AS invoice_id FROM ${invoices} WHERE ${indexIn("stripe_invoice_index", await lookupIndexes(ring, "stripe_invoice", invoiceId))}` : null,
    customerId ? sql`SELECT 'customer' AS via, id AS office_id, NULL AS invoice_id FROM ${offices} WHERE ${indexIn("stripe_customer_index", await lookupIndexes(ring, "stripe_customer", customerId))}` : null,
  ].filter((q) => q !== null);
  const rows = lookups.length > 0 ? await db.all<{ via: "invoice" | "customer"; office_id: string; invoice_id: string | null }>(sql.join(lookups, sql` UNION ALL `)) : [];
  const byInvoice = rows.find((r) => r.via === "invoice");
  const byCustomer = rows.find((r) => r.via === "customer");
  const officeId = byInvoice?.office_id ?? byCustomer?.office_id ?? null;
  if (!officeId) return { kind: "bound", officeId: null };
  if (byInvoice && byCustomer && byInvoice.office_id !== byCustomer.office_id) return { kind: "mismatch", officeId, field: "customer", hinted: byCustomer.office_id };
  // The hints: present and well-formed or not, they must name what the stored ids name.
  const officeRef = metadata.office_ref;
  if (officeRef !== undefined && officeRef !== officeId) return { kind: "mismatch", officeId, field: "office_ref", hinted: hintOf(officeRef, OFFICE_REF) };
  const invoiceRef = metadata.invoice_ref;
  if (event.type.startsWith("invoice.") && invoiceRef !== undefined && invoiceRef !== (byInvoice?.invoice_id ?? invoiceRef)) {
    return { kind: "mismatch", officeId, field: "invoice_ref", hinted: hintOf(invoiceRef, INVOICE_REF) };
  }
  return { kind: "bound", officeId };
}

/** A refund of ours: its office, unless its metadata names another one. */
function bindRefundOffice(officeId: string, metadata: Record<string, unknown>): Binding {
  const officeRef = metadata.office_ref;
  if (officeRef !== undefined && officeRef !== officeId) return { kind: "mismatch", officeId, field: "office_ref", hinted: hintOf(officeRef, OFFICE_REF) };
  return { kind: "bound", officeId };
}

/** A hint as it may be recorded: one of our own reference shapes, else only that it was malformed. */
const hintOf = (v: unknown, shape: RegExp) => (typeof v === "string" && shape.test(v) ? v : "(malformed)");

/**
 * An event of another API version than the one this Worker is built for: its objects may have
 * other fields or meanings, so nothing in `data` is read (not even to find its office). It is
 * recorded (`rejected`, `api_version_mismatch`, no office: a replay is refused), audited and
 * logged at error level, and answered 200: Stripe would deliver the same rendering on every retry,
 * so a non-2xx would only keep it retrying for days (and Stripe may disable an endpoint that keeps
 * failing). The fix is on Stripe's side (the endpoint's api_version, `npm run stripe:setup`); the
 * daily reconciliation repairs what such events would have changed (docs/operations.md §4).
 */
async function rejectVersion(c: Context<AppEnv>, event: StripeEvent) {
  const received = event.api_version ?? null;
  const inserted = await c.var.db
    .insert(webhookEvents)
    .values({ id: event.id, type: event.type, officeId: null, stripeObjectId: null, status: "rejected", stripeCreatedAt: event.created * 1000, payload: event, error: "api_version_mismatch", receivedAt: clock.now() })
    .onConflictDoNothing()
    .returning({ id: webhookEvents.id });
  if (inserted.length === 0) return c.json({ received: true as const, duplicate: true, status: "duplicate" }, 200);
  const details = { type: event.type, reason: "api_version_mismatch", apiVersion: received, expected: WEBHOOK_API_VERSION };
  console.error(JSON.stringify({ level: "error", msg: "stripe webhook refused: the event's api_version is not the pinned one (set the endpoint's api_version: npm run stripe:setup)", requestId: c.var.requestId, eventId: event.id, ...details }));
  await auditor(c.env, null, c.var.requestId).platform({ action: "webhook.rejected", outcome: "rejected", officeId: null, targetIds: [event.id], details });
  return c.json({ received: true as const, duplicate: false, status: "rejected" }, 200);
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
      // An unsigned delivery is a refusal: audited aggregated, off the request path; 429 past the address's budget.
      return refuse(
        c,
        { action: "webhook.rejected", outcome: "failed", reason: err.reason, route: "POST /webhooks" },
        err.reason === "malformed_payload" ? new ApiError("BAD_REQUEST", err.message) : new ApiError("WEBHOOK_SIGNATURE_INVALID", err.message),
      );
    }
    const db = c.var.db;
    if (event.api_version !== WEBHOOK_API_VERSION) return rejectVersion(c, event);
    const binding = await bindEvent(db, config, event, c.var.requestId);
    const officeId = binding.officeId;
    const handled = isHandled(event.type);
    const status = binding.kind === "mismatch" ? "rejected" : handled && officeId ? "received" : "ignored";
    const reason = binding.kind === "mismatch" ? "binding_mismatch" : handled ? (officeId ? null : "office_unknown") : "unhandled_type";
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
        error: reason,
        receivedAt: clock.now(),
      })
      .onConflictDoNothing()
      .returning({ id: webhookEvents.id });
    if (inserted.length === 0) return c.json({ received: true as const, duplicate: true, status: "duplicate" }, 200);
    if (binding.kind === "mismatch") {
      // Signed by Stripe, yet its metadata names something other than what our stored ids name:
      // someone edited the object on Stripe. Nothing is applied; billing staff look at it.
      const details = { type: event.type, reason: "binding_mismatch", field: binding.field, hinted: binding.hinted };
      console.error(JSON.stringify({ level: "error", msg: "stripe webhook refused: metadata disagrees with the stored binding", requestId: c.var.requestId, eventId: event.id, officeId, ...details }));
      await auditor(c.env, null, c.var.requestId).platform({ action: "webhook.rejected", outcome: "rejected", officeId, targetIds: [event.id], details });
    } else if (status === "received") {
      // Arms the office's outbox, which applies the event; the answer does not wait for it.
      await officeObject(c.env, officeId!).kickStripe();
    } else {
      await auditor(c.env, null, c.var.requestId).platform({ action: "webhook.recorded", outcome: "ignored", officeId, targetIds: [event.id], details: { type: event.type, reason } });
    }
    return c.json({ received: true as const, duplicate: false, status }, 200);
  });
}
