import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";

export const ROLES = ["platform_admin", "office_admin"] as const;

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/payment-method/setup-session",
  operationId: "createPaymentSetupSession",
  tags: ["Offices"],
  summary: "Get a hosted link to add a payment method",
  description:
    "Required role: office_admin of this office, or platform_admin. Answers a short-lived URL of a Stripe Checkout page (setup mode) where the office adds a card for its invoices; no card data ever touches this API. Once Stripe reports the completed session, the card becomes the office's default payment method and later invoices are charged automatically (docs/payment-plan.md §10); `GET /v1/offices/{officeId}` then shows it as `paymentMethod`. The page returns to the configured `PAYMENT_SETUP_SUCCESS_URL` / `PAYMENT_SETUP_CANCEL_URL`. 503 when Stripe cannot be reached or the URLs are not configured; 502 when Stripe refuses; 409 for a canceled office; 422 when the office's own data holds something the PHI guard will not let leave.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema }) },
  responses: {
    201: {
      description: "The session's URL (open it in the admin's browser; do not store it) and when it expires.",
      content: { "application/json": { schema: z.object({ url: z.string().url(), expiresAt: z.string().datetime() }).openapi("PaymentMethodSetupSession") } },
    },
    ...problemResponses(400, 401, 403, 404, 409, 422, 502, 503),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const principal = await authorize(c, { action: "payment_method.setup", roles: ROLES, officeId });
    const session = await officeObject(c.env, officeId).paymentSetupSession({ actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    return c.json(session, 201);
  });
}
