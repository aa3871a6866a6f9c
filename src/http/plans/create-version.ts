import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { plans, planVersions } from "../../db/plans";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { newId } from "../../security/request-id";
import type { App } from "../context";
import { ApiError, problemResponses } from "../problem";
import { planFrom, planReads } from "./load";
import { PlanIdSchema, PlanSchema, PlanVersionInputSchema } from "./schemas";

export const route = createRoute({
  method: "post",
  path: "/v1/plans/{planId}/versions",
  operationId: "createPlanVersion",
  tags: ["Plans"],
  summary: "Create a new version of a plan's prices (platform_admin)",
  description: "Versions are immutable: offices stay on their version until moved. The new version's number is the next one. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: {
    params: z.object({ planId: PlanIdSchema }),
    body: { required: true, content: { "application/json": { schema: PlanVersionInputSchema } } },
  },
  responses: {
    201: { description: "The plan with its new version first.", content: { "application/json": { schema: PlanSchema } } },
    ...problemResponses(400, 401, 403, 404, 409, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { planId } = c.req.valid("param");
    const v = c.req.valid("json");
    const principal = await authorize(c, { action: "plan.version.create", roles: ["platform_admin"] });
    const db = c.var.db;
    const versionId = newId("planv");
    // The next number is taken inside the INSERT, so two concurrent versions cannot share one.
    const rows = await db.batch([
      db.run(sql`INSERT INTO ${planVersions} (id, plan_id, version, currency, base_fee, tiers, included_patients, setup_fee, trial_days, grace_days)
        SELECT ${versionId}, ${planId}, COALESCE(MAX(${planVersions.version}), 0) + 1, ${v.currency}, ${v.baseFee}, ${JSON.stringify(v.tiers)}, ${v.includedPatients}, ${v.setupFee}, ${v.trialDays}, ${v.graceDays}
        FROM ${planVersions} WHERE ${planVersions.planId} = ${planId}
        HAVING EXISTS (SELECT 1 FROM ${plans} WHERE ${plans.id} = ${planId} AND ${plans.status} = 'active')`),
      ...planReads(db, planId),
    ]);
    const plan = planFrom([rows[1], rows[2]]);
    if (plan.status === "retired") throw new ApiError("CONFLICT", "A retired plan takes no new versions.");
    await auditor(c.env, principal, c.var.requestId).platform({ action: "plan.version.create", outcome: "succeeded", officeId: null, targetIds: [planId, versionId] });
    return c.json(plan, 201);
  });
}
