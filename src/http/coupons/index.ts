import { createRoute, z } from "@hono/zod-openapi";
import { asc, eq, sql } from "drizzle-orm";
import { coupons } from "../../db/discounts";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { newId } from "../../security/request-id";
import type { App } from "../context";
import { ApiError, problemResponses } from "../problem";
import { CouponCodeSchema, CouponSchema, couponView, CreateCouponSchema } from "./schemas";
import * as clock from "../../clock";

const ROLES = ["platform_admin"] as const;

export const createRouteDef = createRoute({
  method: "post",
  path: "/v1/coupons",
  tags: ["Discounts"],
  summary: "Define a coupon (platform_admin)",
  description: "A whole percentage or an amount in one currency off monthly invoices, for one, N or every invoice (docs/payment-plan.md §6.10). Coupons never change; archive one to stop new redemptions. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { "application/json": { schema: CreateCouponSchema } } } },
  responses: { 201: { description: "The coupon.", content: { "application/json": { schema: CouponSchema } } }, ...problemResponses(400, 401, 403, 409, 413, 415) },
});

export const listRouteDef = createRoute({
  method: "get",
  path: "/v1/coupons",
  tags: ["Discounts"],
  summary: "List coupons (platform_admin)",
  description: "Oldest first, with how many times each was redeemed. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { query: z.object({ archived: z.enum(["true", "false"]).optional() }).strict() },
  responses: { 200: { description: "Coupons.", content: { "application/json": { schema: z.object({ data: z.array(CouponSchema) }) } } }, ...problemResponses(400, 401, 403) },
});

export const archiveRouteDef = createRoute({
  method: "post",
  path: "/v1/coupons/{code}/archive",
  tags: ["Discounts"],
  summary: "Archive a coupon (platform_admin)",
  description: "No new redemptions; offices that have it keep it. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ code: CouponCodeSchema }) },
  responses: { 200: { description: "The coupon.", content: { "application/json": { schema: CouponSchema } } }, ...problemResponses(400, 401, 403, 404) },
});

export function registerCoupons(app: App) {
  app.openapi(createRouteDef, async (c) => {
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

  app.openapi(listRouteDef, async (c) => {
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

  app.openapi(archiveRouteDef, async (c) => {
    const { code } = c.req.valid("param");
    const principal = await authorize(c, { action: "coupon.archive", roles: ROLES });
    const db = c.var.db;
    const [updated] = await db.update(coupons).set({ archivedAt: sql`COALESCE(${coupons.archivedAt}, ${clock.now()})` }).where(eq(coupons.code, code)).returning();
    if (!updated) throw new ApiError("NOT_FOUND", "No coupon has this code.");
    await auditor(c.env, principal, c.var.requestId).platform({ action: "coupon.archive", outcome: "succeeded", officeId: null, targetIds: [updated.id] });
    return c.json(couponView(updated), 200);
  });
}
