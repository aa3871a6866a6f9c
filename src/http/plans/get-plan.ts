import { createRoute, z } from "@hono/zod-openapi";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { problemResponses } from "../problem";
import { planFrom, planReads } from "./load";
import { PlanIdSchema, PlanSchema } from "./schemas";

export const route = createRoute({
  method: "get",
  path: "/v1/plans/{planId}",
  operationId: "getPlan",
  tags: ["Plans"],
  summary: "Get a plan with its versions (platform_admin)",
  description: "The plan with its versions, newest first. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ planId: PlanIdSchema }) },
  responses: {
    200: { description: "The plan.", content: { "application/json": { schema: PlanSchema } } },
    ...problemResponses(400, 401, 403, 404),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { planId } = c.req.valid("param");
    const principal = await authorize(c, { action: "plan.read", roles: ["platform_admin"] });
    const plan = planFrom(await c.var.db.batch(planReads(c.var.db, planId)));
    await auditor(c.env, principal, c.var.requestId).platform({ action: "plan.read", outcome: "allowed", officeId: null, targetIds: [planId] });
    return c.json(plan, 200);
  });
}
