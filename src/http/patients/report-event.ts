import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { EARLIEST_BILLING_START, earliestEventAt, EVENT_WINDOW_DAYS, type PatientEventKind } from "../../office/patient-events";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { IdempotencyKeySchema, OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";
import { pseudonymise } from "./pseudonymise";

export const ROLES = ["clinical_system", "platform_admin"] as const;
/** No office's window opens earlier: the window of an office starting on the earliest first day. */
const EARLIEST_EVENT_AT = earliestEventAt(EARLIEST_BILLING_START);

export const PatientIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:@-]{1,128}$/, "must be 1 to 128 letters, digits or . _ : @ -")
  .openapi({
    description: "The clinical system's own patient id. It is pseudonymised on arrival and never stored.",
    example: "pt-000123",
  });

const BodySchema = z
  .object({
    occurredAt: z
      .string()
      .datetime({ offset: true })
      .refine((t) => Date.parse(t) >= EARLIEST_EVENT_AT, `must not be before ${new Date(EARLIEST_EVENT_AT).toISOString()}`)
      .openapi({
        description: `When the patient became active (or inactive) in the clinical system: at most 5 minutes in the future, and no earlier than ${EVENT_WINDOW_DAYS} days before the office's first day (00:00 UTC of its billing start date); before that, 400 (docs/payment-plan.md §5.8).`,
        example: "2026-11-20T14:03:00Z",
      }),
  })
  .strict()
  .openapi("PatientEventRequest");

export const AnswerSchema = z
  .object({
    eventId: z.string().openapi({ example: "pev_0f3c9a1b2c3d4e5f60718293a4b5c6d7" }),
    officeId: z.string(),
    patientKey: z.string().length(64).openapi({ description: "HMAC-SHA256 pseudonym of the patient for this office.", example: "3b6a27bccebfb5e8d1a2c4f0a7e9d8c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180" }),
    kind: z.enum(["activate", "deactivate"]),
    occurredAt: z.string().datetime(),
    receivedAt: z.string().datetime(),
    applied: z.boolean().openapi({ description: "False when a later event for this patient had already been applied." }),
    active: z.boolean().openapi({ description: "The patient's state after this request." }),
  })
  .openapi("PatientEvent");

const EventIdempotencyKeySchema = IdempotencyKeySchema.openapi({ description: "Unique per event; a retry with the same key replays the first answer.", example: "evt-7f3a9c" });

function makeRoute(kind: PatientEventKind) {
  return createRoute({
    method: "post",
    path: `/v1/offices/{officeId}/patients/{patientId}/${kind}`,
    operationId: kind === "activate" ? "activatePatient" : "deactivatePatient",
    tags: ["Patients"],
    summary: kind === "activate" ? "Report a patient activation (deprecated: use POST /v1/offices/{officeId}/patient-events)" : "Report a patient deactivation (deprecated: use POST /v1/offices/{officeId}/patient-events)",
    description:
      "**Deprecated** — the patient id is in the path, and paths are written to access logs, traces and analytics by proxies and platforms where bodies are not. Use `POST /v1/offices/{officeId}/patient-events` with the event in the body (one event or up to 1,000); this route is that one with one event, still served for existing clients (docs/payment-plan.md §5.10). Reported by the clinical system. Idempotent by `Idempotency-Key`: the same key replays the first answer (with `Idempotent-Replayed: true`); the same key with a different request is a 409. Required role: clinical_system (or platform_admin).",
    deprecated: true,
    security: [{ bearerAuth: [] }],
    request: {
      params: z.object({ officeId: OfficeIdSchema, patientId: PatientIdSchema }),
      headers: z.object({ "idempotency-key": EventIdempotencyKeySchema }),
      body: { required: true, content: { "application/json": { schema: BodySchema } } },
    },
    responses: {
      200: { description: "The event as recorded.", content: { "application/json": { schema: AnswerSchema } } },
      ...problemResponses(400, 401, 403, 404, 409, 413),
    },
  });
}

export const activateRoute = makeRoute("activate");
export const deactivateRoute = makeRoute("deactivate");

export function register(app: App) {
  for (const [kind, route] of [
    ["activate", activateRoute],
    ["deactivate", deactivateRoute],
  ] as const) {
    app.openapi(route, async (c) => {
      const { officeId, patientId } = c.req.valid("param");
      const idempotencyKey = c.req.valid("header")["idempotency-key"];
      const { occurredAt } = c.req.valid("json");
      const principal = await authorize(c, { action: `patient.${kind}`, roles: ROLES, officeId });
      // The bulk route with one event (docs/payment-plan.md §5.10), answered as this route always was.
      const requests = pseudonymise(c, officeId, [{ patientId, kind, occurredAt, idempotencyKey }]);
      const [outcome] = await officeObject(c.env, officeId).patientEvents(requests, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
      c.header("Deprecation", "true");
      c.header("Link", `</v1/offices/${officeId}/patient-events>; rel="successor-version"`);
      switch (outcome!.status) {
        case "applied":
          return c.json(outcome!.event, 200);
        case "replayed":
          c.header("Idempotent-Replayed", "true");
          return c.json(outcome!.event, 200);
        case "conflict":
          throw new ApiError("CONFLICT", outcome!.code === "IDEMPOTENCY_KEY_REUSED" ? "This Idempotency-Key was already used with a different request." : outcome!.reason);
        case "invalid":
          throw new ApiError("VALIDATION_FAILED", outcome!.reason, { errors: [{ path: outcome!.field, message: outcome!.message }] });
      }
    });
  }
}
