import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";

export const ROLES = ["platform_admin"] as const;
const params = z.object({ officeId: OfficeIdSchema });

export const route = createRoute({
  method: "delete",
  path: "/v1/offices/{officeId}/discount",
  operationId: "removeDiscount",
  tags: ["Discounts"],
  summary: "Remove an office's discount (platform_admin)",
  description: "Closes from now on apply no discount; invoices already closed keep theirs. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params },
  responses: { 204: { description: "Removed." }, ...problemResponses(400, 401, 403, 404) },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const principal = await authorize(c, { action: "discount.remove", roles: ROLES, officeId });
    await officeObject(c.env, officeId).removeDiscount({ actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    return c.body(null, 204);
  });
}
