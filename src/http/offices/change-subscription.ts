import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq } from "drizzle-orm";
import { plans, planVersions } from "../../db/plans";
import { officeObject } from "../../office/client";
import type { SubscriptionChange } from "../../office/subscription";
import { authorize, type Principal } from "../../security/auth";
import type { App, AppEnv } from "../context";
import { OfficeIdSchema } from "../ids";
import { PlanIdSchema } from "../plans/schemas";
import { ApiError, problemResponses } from "../problem";
import { OfficeSchema, officeView } from "./view";
import type { Context } from "hono";

const params = z.object({ officeId: OfficeIdSchema });
const answer = { description: "The office after the change.", content: { "application/json": { schema: OfficeSchema } } };

export const planRoute = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/plan",
  operationId: "changePlan",
  tags: ["Offices"],
  summary: "Change the office's plan",
  description:
    "`next_cycle` (default): the new plan's newest version applies from the next cycle. `immediately`: the base fee is prorated by days on each plan, and the per-patient price is the new plan's when the cycle closes. Required role: office_admin of this office, or platform_admin.",
  security: [{ bearerAuth: [] }],
  request: {
    params,
    body: {
      required: true,
      content: { "application/json": { schema: z.object({ planId: PlanIdSchema, when: z.enum(["next_cycle", "immediately"]).default("next_cycle") }).strict().openapi("PlanChangeRequest") } },
    },
  },
  responses: { 200: answer, ...problemResponses(400, 401, 403, 404, 409, 413, 415) },
});

export const cancelRoute = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/cancel",
  operationId: "cancelSubscription",
  tags: ["Offices"],
  summary: "Cancel the subscription",
  description:
    "`period_end` (default; office_admin or platform_admin): the current cycle is invoiced as usual and the office is canceled when it closes. `immediately` (platform_admin only): the current invoice is finalized now, with the base fee for the days used. Required role: office_admin of this office, or platform_admin.",
  security: [{ bearerAuth: [] }],
  request: {
    params,
    body: { required: false, content: { "application/json": { schema: z.object({ when: z.enum(["period_end", "immediately"]).default("period_end") }).strict().openapi("CancelRequest") } } },
  },
  responses: { 200: answer, ...problemResponses(400, 401, 403, 404, 409, 413, 415) },
});

export const resumeRoute = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/resume",
  operationId: "resumeSubscription",
  tags: ["Offices"],
  summary: "Resume a subscription set to cancel at period end",
  description: "Required role: office_admin of this office, or platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params },
  responses: { 200: answer, ...problemResponses(400, 401, 403, 404, 409) },
});

const ADMINS = ["platform_admin", "office_admin"] as const;

async function apply(c: Context<AppEnv>, officeId: string, principal: Principal, change: SubscriptionChange) {
  const office = await officeObject(c.env, officeId).changeSubscription(change, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
  return officeView(office);
}

export function register(app: App) {
  app.openapi(planRoute, async (c) => {
    const { officeId } = c.req.valid("param");
    const body = c.req.valid("json");
    const principal = await authorize(c, { action: "subscription.plan_change", roles: ADMINS, officeId });
    const db = c.var.db;
    const [planRows, versionRows] = await db.batch([
      db.select().from(plans).where(eq(plans.id, body.planId)),
      db.select().from(planVersions).where(eq(planVersions.planId, body.planId)).orderBy(desc(planVersions.version)).limit(1),
    ]);
    if (!planRows[0] || !versionRows[0]) throw new ApiError("NOT_FOUND", "No such plan.");
    if (planRows[0].status !== "active") throw new ApiError("CONFLICT", "This plan is retired and takes no new offices.");
    return c.json(await apply(c, officeId, principal, { type: "plan", planVersionId: versionRows[0].id, when: body.when }), 200);
  });

  app.openapi(cancelRoute, async (c) => {
    const { officeId } = c.req.valid("param");
    const when = (c.req.valid("json") as { when?: "period_end" | "immediately" } | undefined)?.when ?? "period_end";
    const principal = await authorize(c, { action: "subscription.cancel", roles: when === "immediately" ? ["platform_admin"] : ADMINS, officeId });
    return c.json(await apply(c, officeId, principal, { type: "cancel", when }), 200);
  });

  app.openapi(resumeRoute, async (c) => {
    const { officeId } = c.req.valid("param");
    const principal = await authorize(c, { action: "subscription.resume", roles: ADMINS, officeId });
    return c.json(await apply(c, officeId, principal, { type: "resume" }), 200);
  });
}
