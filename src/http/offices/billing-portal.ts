import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";

export const ROLES = ["platform_admin", "office_admin"] as const;

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/billing-portal",
  operationId: "createBillingPortalSession",
  tags: ["Offices"],
  summary: "Open a Stripe billing-portal session",
  description:
    "Required role: office_admin of this office, or platform_admin. Answers a short-lived URL of Stripe's hosted billing portal, where the office manages its payment methods; no card data ever touches this API. The portal returns to the configured `BILLING_PORTAL_RETURN_URL`. 503 `SERVICE_UNAVAILABLE` when Stripe cannot be reached or `BILLING_PORTAL_RETURN_URL` is not set, 503 `BILLING_PORTAL_NOT_CONFIGURED` when Stripe has no default portal configuration (`npm run stripe:setup`, and the customer portal settings saved in Stripe's Dashboard); 502 when Stripe refuses; 422 when the office's own data (its legal name) holds something the PHI guard will not let leave.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema }) },
  responses: {
    201: {
      description: "The session's URL (open it in the admin's browser; do not store it).",
      content: { "application/json": { schema: z.object({ url: z.string().url() }).openapi("BillingPortalSession") } },
    },
    ...problemResponses(400, 401, 403, 404, 422, 502, 503),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const principal = await authorize(c, { action: "billing_portal.create", roles: ROLES, officeId });
    const session = await officeObject(c.env, officeId).billingPortal({ actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    return c.json(session, 201);
  });
}
