import { createRoute, z } from "@hono/zod-openapi";
import { plans, planVersions } from "../../db/plans";
import { dbErrorMatches } from "../../db/errors";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { newId } from "../../security/request-id";
import type { App } from "../context";
import { ApiError, problemResponses } from "../problem";
import { planFrom, planReads } from "./load";
import { PlanSchema, PlanVersionInputSchema } from "./schemas";
import { text } from "../text";

export const ROLES = ["platform_admin"] as const;

const BodySchema = z
  .object({
    code: z.string().regex(/^[a-z0-9][a-z0-9_-]{1,63}$/, "must be 2–64 lowercase letters, digits, _ or -").openapi({ example: "standard" }),
    name: text({ max: 100 }).openapi({ example: "Standard" }),
    version: PlanVersionInputSchema,
  })
  .strict()
  .openapi("CreatePlanRequest");

export const route = createRoute({
  method: "post",
  path: "/v1/plans",
  operationId: "createPlan",
  tags: ["Plans"],
  summary: "Create a plan with its first version (platform_admin)",
  description: "Creates the plan and its version 1 (fees, tiers, trial and grace days, currency). Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { "application/json": { schema: BodySchema } } } },
  responses: {
    201: { description: "The plan.", content: { "application/json": { schema: PlanSchema } } },
    ...problemResponses(400, 401, 403, 409, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const principal = await authorize(c, { action: "plan.create", roles: ROLES });
    const db = c.var.db;
    const planId = newId("plan");
    const versionId = newId("planv");
    let rows;
    try {
      rows = await db.batch([
        db.insert(plans).values({ id: planId, code: body.code, name: body.name }),
        db.insert(planVersions).values({ id: versionId, planId, version: 1, ...body.version }),
        ...planReads(db, planId),
      ]);
    } catch (err) {
      if (dbErrorMatches(err, /UNIQUE constraint failed: plans\.code/)) throw new ApiError("CONFLICT", "A plan with this code exists.");
      throw err;
    }
    await auditor(c.env, principal, c.var.requestId).platform({ action: "plan.create", outcome: "succeeded", officeId: null, targetIds: [planId, versionId] });
    return c.json(planFrom([rows[2], rows[3]]), 201);
  });
}
