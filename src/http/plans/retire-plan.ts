import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { plans } from "../../db/plans";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { problemResponses } from "../problem";
import { planFrom, planReads } from "./load";
import { PlanIdSchema, PlanSchema } from "./schemas";

export const route = createRoute({
  method: "post",
  path: "/v1/plans/{planId}/retire",
  operationId: "retirePlan",
  tags: ["Plans"],
  summary: "Retire a plan: it takes no new offices (platform_admin)",
  description: "Offices already on the plan keep it. Retiring twice is harmless. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ planId: PlanIdSchema }) },
  responses: {
    200: { description: "The retired plan.", content: { "application/json": { schema: PlanSchema } } },
    ...problemResponses(400, 401, 403, 404),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { planId } = c.req.valid("param");
    const principal = await authorize(c, { action: "plan.retire", roles: ["platform_admin"] });
    const db = c.var.db;
    const rows = await db.batch([db.update(plans).set({ status: "retired" }).where(eq(plans.id, planId)), ...planReads(db, planId)]);
    const plan = planFrom([rows[1], rows[2]]);
    await auditor(c.env, principal, c.var.requestId).platform({ action: "plan.retire", outcome: "succeeded", officeId: null, targetIds: [planId] });
    return c.json(plan, 200);
  });
}
