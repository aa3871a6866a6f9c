import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { MAX_TRACE_EVENTS, MAX_TRACE_INVOICES } from "../../office/patient-trace";
import { authorize } from "../../security/auth";
import { patientKey } from "../../security/crypto";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { PatientIdSchema } from "./report-event";

/**
 * The internal tier (docs/payment-plan.md §5.9): one patient's billing trace, for the clinical
 * system and the SaaS's billing staff. Not office_admin or office_viewer: an office's billing
 * users see counts, never which patients (the answer ties one named patient to billing).
 */
export const ROLES = ["clinical_system", "platform_admin"] as const;

const BodySchema = z
  .object({ patientId: PatientIdSchema })
  .strict()
  .openapi("PatientBillingRequest", { example: { patientId: "pt-000123" } });

const Instant = z.string().datetime();

const AnswerSchema = z
  .object({
    patientKey: z.string().length(64).openapi({ description: "The patient's pseudonym in this office (the raw id is not repeated).", example: "3b6a27bccebfb5e8d1a2c4f0a7e9d8c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180" }),
    state: z
      .object({
        known: z.boolean().openapi({ description: "Whether the office has ever recorded an event for this patient." }),
        active: z.boolean(),
        since: Instant.nullable().openapi({ description: "Event time of the activation or deactivation that set the current state." }),
      })
      .openapi({ example: { known: true, active: true, since: "2026-09-05T12:00:00.000Z" } }),
    events: z
      .array(
        z.object({
          id: z.string().openapi({ description: "The event's id in this service.", example: "pev_0f4c2a9d8e7b6a5c4d3e2f1a0b9c8d7e" }),
          kind: z.enum(["activate", "deactivate"]),
          occurredAt: Instant,
          recordedAt: Instant,
          applied: z.boolean().openapi({ description: "Whether the event changed the patient's state (false when a later event had already been applied)." }),
        }),
      )
      .openapi({ description: `The patient's events, newest first (at most ${MAX_TRACE_EVENTS}).` }),
    eventsTruncated: z.boolean().openapi({ description: `True when the patient has more than ${MAX_TRACE_EVENTS} events (the oldest are left out).` }),
    invoices: z
      .array(
        z.object({
          invoiceId: z.string(),
          kind: z.string(),
          status: z.string().openapi({ description: "The invoice's status; `draft`: the current cycle, counted so far." }),
          periodStart: z.string().date(),
          periodEnd: z.string().date(),
          cycleClosed: z.boolean(),
          countedAt: Instant,
        }),
      )
      .openapi({ description: `Every cycle (monthly invoice) that counted the patient, newest first (at most ${MAX_TRACE_INVOICES}).` }),
    invoicesTruncated: z.boolean(),
  })
  .openapi("PatientBilling");

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/patient-billing",
  operationId: "getPatientBilling",
  tags: ["Patients"],
  summary: "One patient's billing trace: state, events and the invoices that counted them",
  description:
    "The patient id goes in the body (never in the URL), is pseudonymised at once and never stored or echoed; the call is audited with the pseudonym and counts only. Required role: clinical_system of this office, or platform_admin (docs/payment-plan.md §5.9).",
  security: [{ bearerAuth: [] }],
  request: {
    params: z.object({ officeId: OfficeIdSchema }),
    body: { required: true, content: { "application/json": { schema: BodySchema } } },
  },
  responses: {
    200: { description: "The patient's billing trace.", content: { "application/json": { schema: AnswerSchema } } },
    ...problemResponses(400, 401, 403, 404, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const { patientId } = c.req.valid("json");
    const principal = await authorize(c, { action: "patient.billing", roles: ROLES, officeId, targetIds: [officeId] });
    // The raw id ends here: only its pseudonym (version 1, the chain's root) travels on.
    const root = await patientKey(c.var.config.PATIENT_KEY_SECRET, officeId, patientId);
    const answer = await officeObject(c.env, officeId).patientBilling(root, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    return c.json(answer, 200);
  });
}
