import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { MAX_PATIENT_CHECK } from "../../office/patient-trace";
import { authorize } from "../../security/auth";
import { patientKey } from "../../security/crypto";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { PatientIdSchema } from "../patients/report-event";
import { InvoiceIdSchema } from "./view";

/**
 * The internal tier (docs/payment-plan.md §5.9): the clinical system and the SaaS's billing staff
 * may ask which patients an invoice counted. Not office_admin or office_viewer: the office's
 * billing users see counts only (an office admin is not a clinician, and the answer ties named
 * patients to billing), and Stripe never sees any of it.
 */
export const ROLES = ["clinical_system", "platform_admin"] as const;

const BodySchema = z
  .object({
    patientIds: z
      .array(PatientIdSchema)
      .min(1)
      .max(MAX_PATIENT_CHECK)
      .openapi({ description: `The clinical system's own patient ids (1 to ${MAX_PATIENT_CHECK}); pseudonymised on arrival, never stored, never echoed.`, example: ["pt-000123", "pt-000124"] }),
  })
  .strict()
  .openapi("PatientCheckRequest");

const AnswerSchema = z
  .object({
    invoiceId: z.string(),
    periodStart: z.string().date(),
    periodEnd: z.string().date(),
    counted: z.number().int().openapi({ description: "How many of the given patients the invoice counted." }),
    results: z
      .array(
        z.object({
          index: z.number().int().openapi({ description: "The patient's position in the request's `patientIds`." }),
          patientKey: z.string().length(64).openapi({ description: "The patient's pseudonym in this office.", example: "3b6a27bccebfb5e8d1a2c4f0a7e9d8c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180" }),
          counted: z.boolean().openapi({ description: "Whether the invoice counted the patient (billable in its cycle, payment-plan §5.3)." }),
        }),
      )
      .openapi({ description: "One per requested patient, in the request's order; the raw ids are not repeated." }),
  })
  .openapi("PatientCheck");

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/invoices/{invoiceId}/patient-check",
  operationId: "checkInvoicePatients",
  tags: ["Patients"],
  summary: "Check which patients a monthly invoice counted",
  description:
    "The patient ids go in the body (never in the URL), are pseudonymised at once and never stored or echoed; the call is audited with a digest of the pseudonyms and the counts. A draft answers for its cycle so far. Required role: clinical_system of this office, or platform_admin (docs/payment-plan.md §5.9).",
  security: [{ bearerAuth: [] }],
  request: {
    params: z.object({ officeId: OfficeIdSchema, invoiceId: InvoiceIdSchema }),
    body: { required: true, content: { "application/json": { schema: BodySchema } } },
  },
  responses: {
    200: { description: "Per patient, whether the invoice counted them.", content: { "application/json": { schema: AnswerSchema } } },
    ...problemResponses(400, 401, 403, 404, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId, invoiceId } = c.req.valid("param");
    const { patientIds } = c.req.valid("json");
    const principal = await authorize(c, { action: "patient.check", roles: ROLES, officeId, targetIds: [invoiceId] });
    // The raw ids end here: only their pseudonyms (version 1, the chain's root) travel on.
    const secret = c.var.config.PATIENT_KEY_SECRET;
    const roots = await Promise.all(patientIds.map((id) => patientKey(secret, officeId, id)));
    const answer = await officeObject(c.env, officeId).patientCheck(invoiceId, roots, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    const results = answer.results.map((r, index) => ({ index, ...r }));
    return c.json({ invoiceId, periodStart: answer.periodStart, periodEnd: answer.periodEnd, counted: results.filter((r) => r.counted).length, results }, 200);
  });
}
