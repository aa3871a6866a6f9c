import { createRoute, z } from "@hono/zod-openapi";
import { chargeCategories } from "../../billing/charges";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { text } from "../text";

export const ROLES = ["platform_admin"] as const;

const BodySchema = z
  .object({
    amount: z.number().int().min(1).max(100_000_000).openapi({ description: "Minor units.", example: 15000 }),
    category: z.enum(chargeCategories).openapi({ description: "The line reads the category's fixed label." }),
    note: text({ min: 0, max: 500, multiline: true }).optional().openapi({ description: "Internal note for billing staff. Never sent to Stripe or shown on the invoice." }),
    mode: z.enum(["invoice_now", "add_to_current"]).openapi({ description: "`invoice_now`: its own invoice, finalized at once; `add_to_current`: a line on the current cycle's draft." }),
  })
  .strict()
  .openapi("ChargeRequest");

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/charges",
  operationId: "addCharge",
  tags: ["Invoices"],
  summary: "Add a one-off charge (platform_admin)",
  description: "Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema }), body: { required: true, content: { "application/json": { schema: BodySchema } } } },
  responses: {
    201: {
      description: "The charge's line and the invoice it is on.",
      content: { "application/json": { schema: z.object({ lineId: z.string(), invoiceId: z.string() }).openapi("Charge") } },
    },
    ...problemResponses(400, 401, 403, 404, 409, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const body = c.req.valid("json");
    const principal = await authorize(c, { action: "charge.add", roles: ROLES, officeId });
    const charge = await officeObject(c.env, officeId).addCharge(
      { amount: body.amount, category: body.category, note: body.note ?? null, mode: body.mode },
      { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId },
    );
    return c.json(charge, 201);
  });
}
