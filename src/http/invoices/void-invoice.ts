import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { invoiceDocuments } from "./documents";
import { InvoiceIdSchema, InvoiceSchema, invoiceView } from "./view";

export const ROLES = ["platform_admin"] as const;

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/invoices/{invoiceId}/void",
  operationId: "voidInvoice",
  tags: ["Invoices"],
  summary: "Void an open invoice (platform_admin)",
  description:
    "Required role: platform_admin. Only an `open` invoice can be voided (a draft is still being billed; a paid invoice is refunded instead). An invoice Stripe has is checked there first: if Stripe already collected it, the answer is 409 and the invoice is marked paid. 503 when Stripe cannot be reached to check. If the invoice was sent to Stripe, its Stripe copy is voided by the office's outbox right after (`stripeState` becomes `voided`).",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema, invoiceId: InvoiceIdSchema }) },
  responses: {
    200: { description: "The voided invoice.", content: { "application/json": { schema: InvoiceSchema } } },
    ...problemResponses(400, 401, 403, 404, 409, 502, 503),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId, invoiceId } = c.req.valid("param");
    const principal = await authorize(c, { action: "invoice.void", roles: ROLES, officeId, targetIds: [invoiceId] });
    const invoice = await officeObject(c.env, officeId).voidInvoice(invoiceId, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    const documents = await invoiceDocuments(c.var.config, [invoice]);
    return c.json(invoiceView(invoice, undefined, undefined, documents.get(invoice.id)), 200);
  });
}
