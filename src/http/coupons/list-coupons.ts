import { createRoute, z } from "@hono/zod-openapi";
import { asc, sql } from "drizzle-orm";
import { coupons } from "../../db/discounts";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { problemResponses } from "../problem";
import { CouponSchema, couponView } from "./schemas";

export const ROLES = ["platform_admin"] as const;

export const route = createRoute({
  method: "get",
  path: "/v1/coupons",
  operationId: "listCoupons",
  tags: ["Discounts"],
  summary: "List coupons (platform_admin)",
  description: "Oldest first, with how many times each was redeemed. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { query: z.object({ archived: z.enum(["true", "false"]).optional() }).strict() },
  responses: { 200: { description: "Coupons.", content: { "application/json": { schema: z.object({ data: z.array(CouponSchema) }) } } }, ...problemResponses(400, 401, 403) },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { archived } = c.req.valid("query");
    const principal = await authorize(c, { action: "coupon.list", roles: ROLES });
    const rows = await c.var.db
      .select()
      .from(coupons)
      .where(archived === undefined ? undefined : archived === "true" ? sql`${coupons.archivedAt} IS NOT NULL` : sql`${coupons.archivedAt} IS NULL`)
      .orderBy(asc(coupons.createdAt), asc(coupons.id));
    await auditor(c.env, principal, c.var.requestId).platform({ action: "coupon.list", outcome: "allowed", officeId: null });
    return c.json({ data: rows.map(couponView) }, 200);
  });
}
