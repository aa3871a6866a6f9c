import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";
import { READ_ROLES } from "./get-usage";
import { invoiceDocuments } from "./documents";
import { InvoiceIdSchema, InvoiceSchema, invoiceView } from "./view";

export const route = createRoute({
  method: "get",
  path: "/v1/offices/{officeId}/invoices/{invoiceId}",
  operationId: "getInvoice",
  tags: ["Invoices"],
  summary: "Get an invoice with its lines and payment status",
  description: "Required role: platform_admin, or office_admin / office_viewer of this office.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema, invoiceId: InvoiceIdSchema }) },
  responses: {
    200: { description: "The invoice.", content: { "application/json": { schema: InvoiceSchema } } },
    ...problemResponses(400, 401, 403, 404),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId, invoiceId } = c.req.valid("param");
    const principal = await authorize(c, { action: "invoice.read", roles: READ_ROLES, officeId, targetIds: [invoiceId] });
    const { invoices, lines, refunds, creditNotes } = await officeObject(c.env, officeId).read({ kind: "invoice", invoiceId }, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    const invoice = invoices[0];
    if (!invoice) throw new ApiError("NOT_FOUND", "No such invoice.");
    const documents = await invoiceDocuments(c.var.config, [invoice]);
    return c.json(invoiceView(invoice, lines, refunds, documents.get(invoice.id), creditNotes ?? []), 200);
  });
}
