import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq } from "drizzle-orm";
import { isTimeZone, localDate } from "../../billing/calendar";
import { plans, planVersions } from "../../db/plans";
import { officeObject } from "../../office/client";
import { EARLIEST_BILLING_START } from "../../office/patient-events";
import { authorize } from "../../security/auth";
import { hmacSha256Hex } from "../../security/crypto";
import { requestKeySecret } from "../../config";
import { newId } from "../../security/request-id";
import type { App } from "../context";
import { IdempotencyKeySchema } from "../ids";
import { PlanIdSchema } from "../plans/schemas";
import { ApiError, problemResponses } from "../problem";
import { OfficeSchema, officeView } from "./view";
import * as clock from "../../clock";
import { text } from "../text";
import { identifierKindNames, officeTextFindings } from "../../stripe/guard";

export const ROLES = ["platform_admin"] as const;

const BodySchema = z
  .object({
    legalName: text({ max: 200 }).openapi({ example: "Lakeside Family Practice LLC" }),
    billingEmail: text({ max: 254 }).email().openapi({ example: "billing@lakeside.example" }),
    timeZone: text({ max: 64 }).refine(isTimeZone, "must be an IANA time zone").openapi({ example: "America/New_York" }),
    billingAnchorDay: z.number().int().min(1).max(31).openapi({ description: "Day of the month cycles start (the month's last day when shorter).", example: 1 }),
    planId: PlanIdSchema.openapi({ description: "An active plan; the office takes its newest version." }),
    startsOn: z
      .string()
      .date()
      .refine((d) => d >= EARLIEST_BILLING_START && d <= new Date(clock.now() + 366 * 86_400_000).toISOString().slice(0, 10), `must lie between ${EARLIEST_BILLING_START} and a year from now`)
      .optional()
      .openapi({ description: "The office's first local day (default: today in its time zone), e.g. when migrating a customer.", example: "2026-11-01" }),
  })
  .strict()
  // The office's legal name and billing e-mail cross to Stripe (the Customer's name and email):
  // text the PHI guard would block at the outbox is refused here, by the guard's own scan.
  .superRefine((body, ctx) => {
    for (const f of officeTextFindings(body)) {
      ctx.addIssue({ code: "custom", path: [f.field], message: `looks like it holds ${identifierKindNames[f.kind]}`, params: { code: "OFFICE_TEXT_LOOKS_LIKE_PHI" } });
    }
  })
  .openapi("OnboardOfficeRequest");

export const route = createRoute({
  method: "post",
  path: "/v1/offices",
  operationId: "createOffice",
  tags: ["Offices"],
  summary: "Onboard an office (platform_admin)",
  description:
    "Creates the office in its first cycle with that cycle's draft invoice, and, when the plan has a setup fee, a setup-fee invoice finalized at once. With an `Idempotency-Key`, a retry with the same key and body answers the office the first request made (with `Idempotent-Replayed: true`) instead of onboarding a second one; the same key with another body is a 409. A legal name or billing e-mail that looks like it holds a patient identifier (an SSN, a phone, record or account number, a date, an address…, however written: full-width or spaced digits, dashes, encodings) is refused with 400 OFFICE_TEXT_LOOKS_LIKE_PHI, naming the field and the kind, never the value: both are sent to Stripe, which must receive no patient data. The office starts without a payment method (`paymentMethod.status: none`): until it adds one, its invoices are sent for payment by e-mail with a due date; its admin adds one through `POST /v1/offices/{officeId}/payment-method/setup-session` (docs/payment-plan.md §10). Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: {
    headers: z.object({
      "idempotency-key": IdempotencyKeySchema.optional().openapi({ description: "Optional; a retry with the same key and body replays the first answer.", example: "onboard-lakeside-2026-11" }),
    }),
    body: { required: true, content: { "application/json": { schema: BodySchema } } },
  },
  responses: {
    201: { description: "The office.", content: { "application/json": { schema: OfficeSchema } } },
    ...problemResponses(400, 401, 403, 404, 409, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const principal = await authorize(c, { action: "office.onboard", roles: ROLES });
    const db = c.var.db;
    const [planRows, versionRows] = await db.batch([
      db.select().from(plans).where(eq(plans.id, body.planId)),
      db.select().from(planVersions).where(and(eq(planVersions.planId, body.planId))).orderBy(desc(planVersions.version)).limit(1),
    ]);
    const plan = planRows[0];
    const planVersion = versionRows[0];
    if (!plan || !planVersion) throw new ApiError("NOT_FOUND", "No such plan.");
    if (plan.status !== "active") throw new ApiError("CONFLICT", "This plan is retired and takes no new offices.");
    const idempotencyKey = c.req.valid("header")["idempotency-key"];
    // A keyed request names its office itself: the id is derived from the key (keyed by the
    // platform's secret; keys are platform-wide, as Stripe's are account-wide), so a retry, by
    // any platform admin, reaches the same office object and replays.
    const officeId = idempotencyKey ? `off_${(await hmacSha256Hex(requestKeySecret(c.var.config), `office-onboard:${idempotencyKey}`)).slice(0, 32)}` : newId("off");
    const { office, replayed } = await officeObject(c.env, officeId).onboard(
      {
        legalName: body.legalName,
        billingEmail: body.billingEmail,
        timeZone: body.timeZone,
        billingAnchorDay: body.billingAnchorDay,
        startsOn: body.startsOn ?? localDate(clock.now(), body.timeZone),
        planVersion,
        idempotent: idempotencyKey !== undefined,
      },
      { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId },
    );
    if (replayed) c.header("Idempotent-Replayed", "true");
    return c.json(officeView(office), 201);
  });
}
