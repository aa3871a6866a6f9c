import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { discountView, OfficeSchema, officeView } from "./view";

export const ROLES = ["platform_admin", "office_admin", "office_viewer"] as const;

export const route = createRoute({
  method: "get",
  path: "/v1/offices/{officeId}",
  operationId: "getOffice",
  tags: ["Offices"],
  summary: "Get an office's billing profile",
  description: "Required role: platform_admin, or office_admin / office_viewer of this office.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema }) },
  responses: {
    200: { description: "The office.", content: { "application/json": { schema: OfficeSchema } } },
    ...problemResponses(400, 401, 403, 404),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const principal = await authorize(c, { action: "office.read", roles: ROLES, officeId });
    const { office, discount } = await officeObject(c.env, officeId).read({ kind: "office" }, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    return c.json({ ...officeView(office!), discount: discount ? discountView(discount) : null }, 200);
  });
}
