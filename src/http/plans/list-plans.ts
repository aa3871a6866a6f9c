import { createRoute, z } from "@hono/zod-openapi";
import { asc } from "drizzle-orm";
import { plans, planVersions } from "../../db/plans";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { problemResponses } from "../problem";
import { PlanSchema, planView } from "./schemas";

export const route = createRoute({
  method: "get",
  path: "/v1/plans",
  operationId: "listPlans",
  tags: ["Plans"],
  summary: "List plans with their versions (platform_admin)",
  description: "Every plan, active or retired, with its versions. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { query: z.object({ status: z.enum(["active", "retired"]).optional() }).strict() },
  responses: {
    200: { description: "Plans, oldest first.", content: { "application/json": { schema: z.object({ data: z.array(PlanSchema) }) } } },
    ...problemResponses(400, 401, 403),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { status } = c.req.valid("query");
    const principal = await authorize(c, { action: "plan.list", roles: ["platform_admin"] });
    const db = c.var.db;
    const [planRows, versionRows] = await db.batch([db.select().from(plans).orderBy(asc(plans.createdAt), asc(plans.id)), db.select().from(planVersions)]);
    await auditor(c.env, principal, c.var.requestId).platform({ action: "plan.list", outcome: "allowed", officeId: null });
    const data = planRows
      .filter((p) => !status || p.status === status)
      .map((p) => planView(p, versionRows.filter((v) => v.planId === p.id)));
    return c.json({ data }, 200);
  });
}
