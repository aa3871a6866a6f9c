import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { MAX_BULK_EVENTS } from "../../office/patient-batch";
import { EVENT_WINDOW_DAYS } from "../../office/patient-events";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { IdempotencyKeySchema, OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { MAX_BULK_BODY_BYTES } from "../transport";
import { AnswerSchema, PatientIdSchema, ROLES } from "./report-event";
import { pseudonymise } from "./pseudonymise";

const EventSchema = z
  .object({
    patientId: PatientIdSchema,
    kind: z.enum(["activate", "deactivate"]),
    occurredAt: z
      .string()
      .datetime({ offset: true })
      .openapi({
        description: `When the patient became active (or inactive) in the clinical system: at most 5 minutes in the future, and no earlier than ${EVENT_WINDOW_DAYS} days before the office's first day; outside that, the event is answered \`invalid\` (docs/payment-plan.md §5.8).`,
        example: "2026-11-20T14:03:00Z",
      }),
    idempotencyKey: IdempotencyKeySchema.openapi({ description: "Unique per event (shared with the single-event routes): a retry with the same key replays the first answer.", example: "evt-7f3a9c" }),
  })
  .strict()
  .openapi("PatientEventItem");

const BodySchema = z
  .object({ events: z.array(EventSchema).min(1).max(MAX_BULK_EVENTS).openapi({ description: `1 to ${MAX_BULK_EVENTS} events, answered in this order.` }) })
  .strict()
  .openapi("PatientEventsRequest");

const ResultSchema = z
  .object({
    index: z.number().int().openapi({ description: "The event's position in the request's `events`." }),
    status: z.enum(["applied", "replayed", "conflict", "invalid"]).openapi({
      description:
        "`applied`: recorded by this request (`event.applied` says whether it moved the patient's state); `replayed`: its key was seen before with the same event (the first answer); `conflict`: its key was used for another event, or an activation for a canceled office; `invalid`: its time lies outside the office's window.",
    }),
    event: AnswerSchema.optional().openapi({ description: "The event as recorded (applied, replayed)." }),
    code: z.enum(["IDEMPOTENCY_KEY_REUSED", "OFFICE_CANCELED", "OCCURRED_AT_OUT_OF_RANGE"]).optional(),
    reason: z.string().optional().openapi({ description: "Why (conflict, invalid); never the patient id." }),
    field: z.literal("occurredAt").optional(),
  })
  .openapi("PatientEventResult");

const ResponseSchema = z
  .object({
    results: z.array(ResultSchema).openapi({ description: "One per event, in the request's order." }),
    counts: z.object({ applied: z.number().int(), replayed: z.number().int(), conflict: z.number().int(), invalid: z.number().int() }),
  })
  .openapi("PatientEventsAnswer");

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/patient-events",
  operationId: "reportPatientEvents",
  tags: ["Patients"],
  summary: "Report patient activations and deactivations (1 to 1,000)",
  description: `Reported by the clinical system; the patient ids travel in the body only (never in a URL, which proxies and platforms log), are pseudonymised on arrival and never stored or echoed. Each event is answered on its own, in order: applied, replayed (same idempotency key, same event), conflict or invalid, with the reason. Everything recorded, with the request's audit entry, is written in one database transaction. A single event is a request with one event. Bodies up to ${MAX_BULK_BODY_BYTES / 1024 / 1024} MiB on this route (64 KiB elsewhere). Required role: clinical_system (or platform_admin). docs/payment-plan.md §5.10.`,
  security: [{ bearerAuth: [] }],
  request: {
    params: z.object({ officeId: OfficeIdSchema }),
    body: { required: true, content: { "application/json": { schema: BodySchema } } },
  },
  responses: {
    200: { description: "One result per event, in order.", content: { "application/json": { schema: ResponseSchema } } },
    ...problemResponses(400, 401, 403, 404, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const { events } = c.req.valid("json");
    const principal = await authorize(c, { action: "patient.events", roles: ROLES, officeId });
    const requests = pseudonymise(c, officeId, events);
    const outcomes = await officeObject(c.env, officeId).patientEvents(requests, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    const counts = { applied: 0, replayed: 0, conflict: 0, invalid: 0 };
    const results = outcomes.map((o, index) => {
      counts[o.status]++;
      switch (o.status) {
        case "applied":
        case "replayed":
          return { index, status: o.status, event: o.event };
        case "invalid":
          return { index, status: o.status, code: o.code, reason: o.reason, field: o.field };
        case "conflict":
          return { index, status: o.status, code: o.code, reason: o.reason };
      }
    });
    return c.json({ results, counts }, 200);
  });
}
