import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, or, sql, type SQL } from "drizzle-orm";
import { clinicalTarget } from "../../clinical/delivery";
import { clinicalDeliveryStatuses, clinicalEvents, clinicalEventTypes } from "../../db/clinical-events";
import * as clock from "../../clock";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../../security/encoding";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";
import { text } from "../text";

export const ROLES = ["platform_admin"] as const;

const Instant = z.string().datetime().nullable();

export const ClinicalDeliverySchema = z
  .object({
    id: z.string().openapi({ description: "The event's id: the receiver de-duplicates by it.", example: "cev_5d0c2a9e8b7f6a5c4d3e2f1a0b9c8d7e" }),
    officeId: z.string(),
    sequence: z.number().int().openapi({ description: "The office's own sequence number (1, 2, 3, …): the order of its changes." }),
    type: z.enum(clinicalEventTypes),
    data: z.record(z.string(), z.unknown()).openapi({ description: "The event's data as sent: ids, statuses, periods and counts (docs/clinical-events.md)." }),
    occurredAt: z.string().datetime(),
    status: z.enum(clinicalDeliveryStatuses).openapi({ description: "`pending` (waiting, or being retried: see `nextAttemptAt`), `delivered` (a 2xx answer), `failed` (three days without one, or not on the allowlist: see `lastError`; replay it)." }),
    attempts: z.number().int(),
    queuedAt: Instant,
    firstAttemptAt: Instant,
    lastAttemptAt: Instant,
    nextAttemptAt: Instant,
    deliveredAt: Instant,
    lastStatus: z.number().int().nullable().openapi({ description: "The receiver's HTTP status at the last attempt." }),
    lastError: z.string().nullable().openapi({ example: "http_500" }),
  })
  .openapi("ClinicalDelivery");

type Row = typeof clinicalEvents.$inferSelect;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const view = (r: Row): z.infer<typeof ClinicalDeliverySchema> => ({
  id: r.id,
  officeId: r.officeId,
  sequence: r.seq,
  type: r.type,
  data: JSON.parse(r.data) as Record<string, unknown>,
  occurredAt: iso(r.occurredAt)!,
  status: r.status,
  attempts: r.attempts,
  queuedAt: iso(r.queuedAt),
  firstAttemptAt: iso(r.firstAttemptAt),
  lastAttemptAt: iso(r.lastAttemptAt),
  nextAttemptAt: iso(r.nextAttemptAt),
  deliveredAt: iso(r.deliveredAt),
  lastStatus: r.lastStatus,
  lastError: r.lastError,
});

const EventIdSchema = z
  .string()
  .regex(/^cev_[0-9a-f]{32}$/, "must be a clinical event id (cev_ followed by 32 hex digits)")
  .openapi({ param: { name: "eventId", in: "path" }, example: "cev_5d0c2a9e8b7f6a5c4d3e2f1a0b9c8d7e" });

export const listRoute = createRoute({
  method: "get",
  path: "/v1/admin/clinical-events",
  operationId: "listClinicalEvents",
  tags: ["Clinical events"],
  summary: "List events for the clinical application and their delivery (platform_admin)",
  description: "Newest first, filtered by office, delivery status and type. `delivery` says whether a CLINICAL_WEBHOOK_URL is configured (without one, events are stored and not delivered). Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: {
    query: z
      .object({
        officeId: OfficeIdSchema.optional(),
        status: z.enum(clinicalDeliveryStatuses).optional(),
        type: z.enum(clinicalEventTypes).optional(),
        cursor: text({ max: 300 }).optional().openapi({ description: "`nextCursor` of the previous page." }),
        limit: z.coerce.number().int().min(1).max(200).default(50),
      })
      .strict(),
  },
  responses: {
    200: {
      description: "A page of events.",
      content: {
        "application/json": {
          schema: z.object({ delivery: z.enum(["configured", "not_configured"]), data: z.array(ClinicalDeliverySchema), nextCursor: z.string().nullable() }).openapi("ClinicalDeliveryPage"),
        },
      },
    },
    ...problemResponses(400, 401, 403),
  },
});

export const replayRoute = createRoute({
  method: "post",
  path: "/v1/admin/clinical-events/{eventId}/replay",
  operationId: "replayClinicalEvent",
  tags: ["Clinical events"],
  summary: "Deliver an event to the clinical application again (platform_admin)",
  description:
    "Puts the event back to `pending` with a fresh three-day retry window and hands it to the delivery queue; the receiver gets the same event id (it de-duplicates) and sequence. 409 when no CLINICAL_WEBHOOK_URL is configured. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ eventId: EventIdSchema }) },
  responses: {
    202: { description: "Queued; `status` is `pending`.", content: { "application/json": { schema: ClinicalDeliverySchema } } },
    ...problemResponses(400, 401, 403, 404, 409),
  },
});

function decodeCursor(cursor: string): { at: number; id: string } {
  const bytes = fromBase64Url(cursor);
  const m = bytes ? /^\{"at":(\d{1,15}),"id":"(cev_[0-9a-f]{32})"\}$/.exec(fromUtf8(bytes)) : null;
  if (!m) throw new ApiError("VALIDATION_FAILED", "The cursor is not one this API issued.", { errors: [{ path: "cursor", message: "invalid cursor" }] });
  return { at: Number(m[1]), id: m[2]! };
}

export function register(app: App) {
  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const principal = await authorize(c, { action: "clinical_event.list", roles: ROLES });
    const filters: SQL[] = [];
    if (q.officeId) filters.push(eq(clinicalEvents.officeId, q.officeId));
    if (q.status) filters.push(eq(clinicalEvents.status, q.status));
    if (q.type) filters.push(eq(clinicalEvents.type, q.type));
    if (q.cursor) {
      const after = decodeCursor(q.cursor);
      filters.push(or(lt(clinicalEvents.createdAt, after.at), and(eq(clinicalEvents.createdAt, after.at), lt(clinicalEvents.id, after.id)))!);
    }
    await auditor(c.env, principal, c.var.requestId).platform({ action: "clinical_event.list", outcome: "allowed", officeId: q.officeId ?? null, details: { status: q.status ?? null, type: q.type ?? null } });
    const rows = await c.var.db
      .select()
      .from(clinicalEvents)
      .where(and(...filters))
      .orderBy(desc(clinicalEvents.createdAt), desc(clinicalEvents.id))
      .limit(q.limit + 1);
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    const nextCursor = rows.length > q.limit && last ? toBase64Url(utf8(JSON.stringify({ at: last.createdAt, id: last.id }))) : null;
    return c.json({ delivery: clinicalTarget(c.var.config) ? ("configured" as const) : ("not_configured" as const), data: page.map(view), nextCursor }, 200);
  });

  app.openapi(replayRoute, async (c) => {
    const { eventId } = c.req.valid("param");
    const principal = await authorize(c, { action: "clinical_event.replay", roles: ROLES, targetIds: [eventId] });
    const db = c.var.db;
    const [row] = await db.select().from(clinicalEvents).where(eq(clinicalEvents.id, eventId));
    if (!row) throw new ApiError("NOT_FOUND", "No such clinical event.");
    const audit = auditor(c.env, principal, c.var.requestId);
    if (!clinicalTarget(c.var.config)) {
      await audit.office(row.officeId, { action: "clinical_event.replay", outcome: "failed", officeId: row.officeId, targetIds: [eventId], details: { reason: "not_configured" } });
      throw new ApiError("CONFLICT", "No CLINICAL_WEBHOOK_URL is configured: events are stored, not delivered.");
    }
    const now = clock.now();
    const [updated] = await db
      .update(clinicalEvents)
      .set({ status: "pending", attempts: 0, firstAttemptAt: null, nextAttemptAt: null, lastError: null, queuedAt: now })
      .where(sql`${clinicalEvents.id} = ${eventId}`)
      .returning();
    await audit.office(row.officeId, { action: "clinical_event.replay", outcome: "succeeded", officeId: row.officeId, targetIds: [eventId], details: { type: row.type, previousStatus: row.status, attempts: row.attempts } });
    await c.env.CLINICAL_EVENTS_QUEUE.send({ eventId });
    return c.json(view(updated!), 202);
  });
}
