import { createRoute, z } from "@hono/zod-openapi";
import { eq, sql } from "drizzle-orm";
import { coupons } from "../../db/discounts";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { ApiError, problemResponses } from "../problem";
import { CouponCodeSchema, CouponSchema, couponView } from "./schemas";
import * as clock from "../../clock";

export const ROLES = ["platform_admin"] as const;

export const route = createRoute({
  method: "post",
  path: "/v1/coupons/{code}/archive",
  operationId: "archiveCoupon",
  tags: ["Discounts"],
  summary: "Archive a coupon (platform_admin)",
  description: "No new redemptions; offices that have it keep it. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ code: CouponCodeSchema }) },
  responses: { 200: { description: "The coupon.", content: { "application/json": { schema: CouponSchema } } }, ...problemResponses(400, 401, 403, 404) },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { code } = c.req.valid("param");
    const principal = await authorize(c, { action: "coupon.archive", roles: ROLES });
    const db = c.var.db;
    const [updated] = await db.update(coupons).set({ archivedAt: sql`COALESCE(${coupons.archivedAt}, ${clock.now()})` }).where(eq(coupons.code, code)).returning();
    if (!updated) throw new ApiError("NOT_FOUND", "No coupon has this code.");
    await auditor(c.env, principal, c.var.requestId).platform({ action: "coupon.archive", outcome: "succeeded", officeId: null, targetIds: [updated.id] });
    return c.json(couponView(updated), 200);
  });
}
