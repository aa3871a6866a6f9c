import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, or, sql, type SQL } from "drizzle-orm";
import { webhookEvents } from "../../db/webhook-events";
import { officeObject } from "../../office/client";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../../security/encoding";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";
import { text } from "../text";

export const ROLES = ["platform_admin"] as const;

const statuses = ["received", "processed", "ignored", "failed", "rejected"] as const;

export const WebhookEventSchema = z
  .object({
    id: z.string().openapi({ example: "evt_1NG8Du2eZvKYlo2CUI79vXWy" }),
    type: z.string().openapi({ example: "invoice.paid" }),
    officeId: z.string().nullable(),
    stripeObjectId: z.string().nullable(),
    status: z.enum(statuses).openapi({ description: "`received`: waiting for its office's object; `processed`; `ignored` (unknown type or office, see `error`); `failed` (see `error`; replay it); `rejected` (`binding_mismatch`: its metadata disagrees with the Stripe ids we stored; never applied, a replay is refused again; `api_version_mismatch`: rendered with another API version than the pinned one; recorded without an office, a replay is refused)." }),
    attempts: z.number().int(),
    error: z.string().nullable(),
    stripeCreatedAt: z.string().datetime(),
    receivedAt: z.string().datetime(),
    processedAt: z.string().datetime().nullable(),
  })
  .openapi("WebhookEvent");

type Row = typeof webhookEvents.$inferSelect;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const view = (r: Row): z.infer<typeof WebhookEventSchema> => ({
  id: r.id,
  type: r.type,
  officeId: r.officeId,
  stripeObjectId: r.stripeObjectId,
  status: r.status,
  attempts: r.attempts,
  error: r.error,
  stripeCreatedAt: iso(r.stripeCreatedAt)!,
  receivedAt: iso(r.receivedAt)!,
  processedAt: iso(r.processedAt),
});

const EventIdSchema = z
  .string()
  .regex(/^evt_[A-Za-z0-9]{1,255}$/, "must be a Stripe event id (evt_…)")
  .openapi({ param: { name: "eventId", in: "path" }, example: "evt_1NG8Du2eZvKYlo2CUI79vXWy" });

export const listRoute = createRoute({
  method: "get",
  path: "/v1/admin/webhook-events",
  operationId: "listWebhookEvents",
  tags: ["Webhooks"],
  summary: "List recorded Stripe webhook events (platform_admin)",
  description: "Newest first, filtered by type, status and office. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: {
    query: z
      .object({
        type: z.string().regex(/^[a-z0-9_.]{1,100}$/).optional(),
        status: z.enum(statuses).optional(),
        officeId: OfficeIdSchema.optional(),
        cursor: text({ max: 300 }).optional().openapi({ description: "`nextCursor` of the previous page." }),
        limit: z.coerce.number().int().min(1).max(200).default(50),
      })
      .strict(),
  },
  responses: {
    200: { description: "A page of events.", content: { "application/json": { schema: z.object({ data: z.array(WebhookEventSchema), nextCursor: z.string().nullable() }).openapi("WebhookEventPage") } } },
    ...problemResponses(400, 401, 403),
  },
});

export const replayRoute = createRoute({
  method: "post",
  path: "/v1/admin/webhook-events/{eventId}/replay",
  operationId: "replayWebhookEvent",
  tags: ["Webhooks"],
  summary: "Replay a recorded Stripe webhook event (platform_admin)",
  description:
    "Applies the recorded event again through its office's object (events only move invoices forward, so a replay of an applied event changes nothing). An event recorded without an office has its office looked up again first. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ eventId: EventIdSchema }) },
  responses: {
    202: { description: "Queued for its office's object; `status` is `received`.", content: { "application/json": { schema: WebhookEventSchema } } },
    ...problemResponses(400, 401, 403, 404, 409),
  },
});

function decodeCursor(cursor: string): { at: number; id: string } {
  const bytes = fromBase64Url(cursor);
  const m = bytes ? /^\{"at":(\d{1,15}),"id":"(evt_[A-Za-z0-9]{1,255})"\}$/.exec(fromUtf8(bytes)) : null;
  if (!m) throw new ApiError("VALIDATION_FAILED", "The cursor is not one this API issued.", { errors: [{ path: "cursor", message: "invalid cursor" }] });
  return { at: Number(m[1]), id: m[2]! };
}

export function register(app: App) {
  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const principal = await authorize(c, { action: "webhook.list", roles: ROLES });
    const filters: SQL[] = [];
    if (q.type) filters.push(eq(webhookEvents.type, q.type));
    if (q.status) filters.push(eq(webhookEvents.status, q.status));
    if (q.officeId) filters.push(eq(webhookEvents.officeId, q.officeId));
    if (q.cursor) {
      const after = decodeCursor(q.cursor);
      filters.push(or(lt(webhookEvents.receivedAt, after.at), and(eq(webhookEvents.receivedAt, after.at), lt(webhookEvents.id, after.id)))!);
    }
    await auditor(c.env, principal, c.var.requestId).platform({ action: "webhook.list", outcome: "allowed", officeId: q.officeId ?? null, details: { type: q.type ?? null, status: q.status ?? null } });
    const rows = await c.var.db
      .select()
      .from(webhookEvents)
      .where(and(...filters))
      .orderBy(desc(webhookEvents.receivedAt), desc(webhookEvents.id))
      .limit(q.limit + 1);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    const nextCursor = rows.length > q.limit && last ? toBase64Url(utf8(JSON.stringify({ at: last.receivedAt, id: last.id }))) : null;
    return c.json({ data: page.map(view), nextCursor }, 200);
  });

  app.openapi(replayRoute, async (c) => {
    const { eventId } = c.req.valid("param");
    const principal = await authorize(c, { action: "webhook.replay", roles: ROLES, targetIds: [eventId] });
    const db = c.var.db;
    const [row] = await db.select().from(webhookEvents).where(eq(webhookEvents.id, eventId));
    if (!row) throw new ApiError("NOT_FOUND", "No such webhook event.");
    if (!row.officeId) {
      await auditor(c.env, principal, c.var.requestId).platform({ action: "webhook.replay", outcome: "failed", officeId: null, targetIds: [eventId], details: { reason: row.error ?? "office_unknown" } });
      throw new ApiError("CONFLICT", `The event is not tied to an office (${row.error ?? "office_unknown"}); there is nothing to apply it to.`);
    }
    const [updated] = await db
      .update(webhookEvents)
      .set({ status: "received", error: null })
      .where(sql`${webhookEvents.id} = ${eventId}`)
      .returning();
    await auditor(c.env, principal, c.var.requestId).office(row.officeId, { action: "webhook.replay", outcome: "succeeded", officeId: row.officeId, targetIds: [eventId], details: { type: row.type, previousStatus: row.status } });
    await officeObject(c.env, row.officeId).kickStripe();
    return c.json(view(updated!), 202);
  });
}
