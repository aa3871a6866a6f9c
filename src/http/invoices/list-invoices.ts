import { createRoute, z } from "@hono/zod-openapi";
import { invoiceKinds, invoiceStatuses } from "../../db/invoices";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../../security/encoding";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";
import { READ_ROLES } from "./get-usage";
import { invoiceDocuments } from "./documents";
import { InvoiceSchema, invoiceView } from "./view";
import { text } from "../text";

const QuerySchema = z
  .object({
    status: z.enum(invoiceStatuses).optional(),
    kind: z.enum(invoiceKinds).optional(),
    periodFrom: z.string().date().optional().openapi({ description: "Invoices whose period starts on or after this date." }),
    periodTo: z.string().date().optional().openapi({ description: "Invoices whose period starts on or before this date." }),
    cursor: text({ max: 200 }).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .strict();

export const route = createRoute({
  method: "get",
  path: "/v1/offices/{officeId}/invoices",
  operationId: "listInvoices",
  tags: ["Invoices"],
  summary: "List an office's invoices, newest first",
  description: "Filter by status, kind and period; paginated with `nextCursor`. Required role: platform_admin, or office_admin / office_viewer of this office.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema }), query: QuerySchema },
  responses: {
    200: { description: "A page of invoices.", content: { "application/json": { schema: z.object({ data: z.array(InvoiceSchema), nextCursor: z.string().nullable() }).openapi("InvoicePage") } } },
    ...problemResponses(400, 401, 403, 404),
  },
});

function decodeCursor(cursor: string) {
  try {
    const [createdAt, id] = JSON.parse(fromUtf8(fromBase64Url(cursor) ?? new Uint8Array())) as [unknown, unknown];
    if (typeof createdAt === "number" && typeof id === "string" && /^inv_[0-9a-f]{32}$/.test(id)) return { createdAt, id };
  } catch {
    // fall through
  }
  throw new ApiError("VALIDATION_FAILED", "The cursor is not one this API issued.", { errors: [{ path: "cursor", message: "invalid cursor" }] });
}

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const q = c.req.valid("query");
    const principal = await authorize(c, { action: "invoice.list", roles: READ_ROLES, officeId });
    const { invoices } = await officeObject(c.env, officeId).read(
      { kind: "invoices", status: q.status, invoiceKind: q.kind, periodFrom: q.periodFrom, periodTo: q.periodTo, after: q.cursor ? decodeCursor(q.cursor) : undefined, limit: q.limit },
      { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId },
    );
    const page = invoices.slice(0, q.limit);
    const last = page.at(-1);
    const nextCursor = invoices.length > q.limit && last ? toBase64Url(utf8(JSON.stringify([last.createdAt, last.id]))) : null;
    const documents = await invoiceDocuments(c.var.config, page);
    return c.json({ data: page.map((i) => invoiceView(i, undefined, undefined, documents.get(i.id))), nextCursor }, 200);
  });
}
