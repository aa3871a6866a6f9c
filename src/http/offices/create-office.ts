import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq } from "drizzle-orm";
import { isTimeZone, localDate } from "../../billing/calendar";
import { plans, planVersions } from "../../db/plans";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import { newId } from "../../security/request-id";
import type { App } from "../context";
import { PlanIdSchema } from "../plans/schemas";
import { ApiError, problemResponses } from "../problem";
import { OfficeSchema, officeView } from "./view";

export const ROLES = ["platform_admin"] as const;

const BodySchema = z
  .object({
    legalName: z.string().trim().min(1).max(200).openapi({ example: "Lakeside Family Practice LLC" }),
    billingEmail: z.string().email().max(254).openapi({ example: "billing@lakeside.example" }),
    timeZone: z.string().max(64).refine(isTimeZone, "must be an IANA time zone").openapi({ example: "America/New_York" }),
    billingAnchorDay: z.number().int().min(1).max(31).openapi({ description: "Day of the month cycles start (the month's last day when shorter).", example: 1 }),
    planId: PlanIdSchema.openapi({ description: "An active plan; the office takes its newest version." }),
    startsOn: z
      .string()
      .date()
      .refine((d) => d >= "2000-01-01" && d <= new Date(Date.now() + 366 * 86_400_000).toISOString().slice(0, 10), "must lie between 2000-01-01 and a year from now")
      .optional()
      .openapi({ description: "The office's first local day (default: today in its time zone), e.g. when migrating a customer.", example: "2026-11-01" }),
  })
  .strict()
  .openapi("OnboardOfficeRequest");

export const route = createRoute({
  method: "post",
  path: "/v1/offices",
  tags: ["Offices"],
  summary: "Onboard an office (platform_admin)",
  description:
    "Creates the office in its first cycle with that cycle's draft invoice, and, when the plan has a setup fee, a setup-fee invoice finalized at once. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { "application/json": { schema: BodySchema } } } },
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
    const officeId = newId("off");
    const { office } = await officeObject(c.env, officeId).onboard(
      {
        legalName: body.legalName,
        billingEmail: body.billingEmail,
        timeZone: body.timeZone,
        billingAnchorDay: body.billingAnchorDay,
        startsOn: body.startsOn ?? localDate(Date.now(), body.timeZone),
        planVersion,
      },
      { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId },
    );
    return c.json(officeView(office), 201);
  });
}
