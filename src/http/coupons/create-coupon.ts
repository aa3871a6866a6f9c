import { createRoute } from "@hono/zod-openapi";
import { coupons } from "../../db/discounts";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { newId } from "../../security/request-id";
import type { App } from "../context";
import { ApiError, problemResponses } from "../problem";
import { CouponSchema, couponView, CreateCouponSchema } from "./schemas";
import * as clock from "../../clock";

export const ROLES = ["platform_admin"] as const;

export const route = createRoute({
  method: "post",
  path: "/v1/coupons",
  operationId: "createCoupon",
  tags: ["Discounts"],
  summary: "Define a coupon (platform_admin)",
  description: "A whole percentage or an amount in one currency off monthly invoices, for one, N or every invoice (docs/payment-plan.md §6.10). Coupons never change; archive one to stop new redemptions. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { "application/json": { schema: CreateCouponSchema } } } },
  responses: { 201: { description: "The coupon.", content: { "application/json": { schema: CouponSchema } } }, ...problemResponses(400, 401, 403, 409, 413, 415) },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const principal = await authorize(c, { action: "coupon.create", roles: ROLES });
    const db = c.var.db;
    const id = newId("cpn");
    const rows = await db
      .insert(coupons)
      .values({
        id,
        code: body.code,
        percentOff: body.percentOff ?? null,
        amountOff: body.amountOff ?? null,
        currency: body.currency ?? null,
        duration: body.duration,
        durationCycles: body.durationCycles ?? null,
        redeemBy: body.redeemBy ? Date.parse(body.redeemBy) : null,
        maxRedemptions: body.maxRedemptions ?? null,
        createdAt: clock.now(),
      })
      .onConflictDoNothing()
      .returning();
    if (!rows[0]) throw new ApiError("CONFLICT", "A coupon with this code exists.");
    await auditor(c.env, principal, c.var.requestId).platform({ action: "coupon.create", outcome: "succeeded", officeId: null, targetIds: [id], details: { code: body.code, percentOff: body.percentOff ?? null, amountOff: body.amountOff ?? null, currency: body.currency ?? null, duration: body.duration } });
    return c.json(couponView(rows[0]), 201);
  });
}
