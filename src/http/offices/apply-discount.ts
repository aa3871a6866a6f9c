import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { CouponCodeSchema } from "../coupons/schemas";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { OfficeDiscountSchema, discountView } from "./view";

export const ROLES = ["platform_admin"] as const;
const params = z.object({ officeId: OfficeIdSchema });

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/discount",
  operationId: "applyDiscount",
  tags: ["Discounts"],
  summary: "Apply a coupon to an office (platform_admin)",
  description:
    "The office's monthly invoices get a discount line at their close, after tiers, proration and the trial (docs/payment-plan.md §6.10). One discount per office (409 while one is open); an expired, archived or exhausted coupon, or an amount in another currency than the office's plan, is a 409. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params, body: { required: true, content: { "application/json": { schema: z.object({ couponCode: CouponCodeSchema }).strict().openapi("ApplyDiscountRequest") } } } },
  responses: { 201: { description: "The office's discount.", content: { "application/json": { schema: OfficeDiscountSchema } } }, ...problemResponses(400, 401, 403, 404, 409, 413, 415) },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const { couponCode } = c.req.valid("json");
    const principal = await authorize(c, { action: "discount.apply", roles: ROLES, officeId });
    const row = await officeObject(c.env, officeId).applyDiscount(couponCode, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    return c.json(discountView(row), 201);
  });
}
