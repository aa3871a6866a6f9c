import { createRoute, z } from "@hono/zod-openapi";
import { datasetNames, datasets } from "../../exports/datasets";
import { exportStream } from "../../exports/stream";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";

/**
 * platform_admin only: an export spans every office, and an office's own invoices, documents and
 * usage are already its office_admin's through the invoice routes and Stripe's billing portal.
 */
export const ROLES = ["platform_admin"] as const;

const DAY = 86_400_000;
const date = z.string().date();

const QuerySchema = z
  .object({
    from: date.openapi({ example: "2026-01-01", description: "First UTC day, included." }),
    to: date.openapi({ example: "2026-03-31", description: "Last UTC day, included." }),
    format: z.enum(["csv", "ndjson"]).default("csv").openapi({ description: "`csv` (RFC 4180, header row, CRLF) or `ndjson` (one JSON object a line)." }),
    officeId: OfficeIdSchema.optional().openapi({ description: "Only this office's rows." }),
  })
  .strict();

export const route = createRoute({
  method: "get",
  path: "/v1/exports/{dataset}",
  operationId: "exportDataset",
  tags: ["Exports"],
  summary: "Export invoices, invoice lines, payments, refunds or credit notes over a date range (platform_admin)",
  description:
    "Streamed as it is read (keyset pages of 500 rows), CSV or NDJSON, amounts in minor units, instants ISO 8601 UTC. Which rows fall in the range: invoices and their lines by finalization, payments by payment, refunds and credit notes by request. A CSV text cell that would start a spreadsheet formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading `'`. Counts only, never a patient. Audited (the request, then the row count when the stream ends). Columns: docs/analytics.md. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ dataset: z.enum(datasetNames).openapi({ example: "invoices" }) }), query: QuerySchema },
  responses: {
    200: {
      description: "The rows.",
      content: {
        "text/csv": { schema: z.string().openapi({ example: "invoice_id,office_id,…\r\n" }) },
        "application/x-ndjson": { schema: z.string().openapi({ example: '{"invoice_id":"inv_…"}\n' }) },
      },
    },
    ...problemResponses(400, 401, 403),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { dataset } = c.req.valid("param");
    const q = c.req.valid("query");
    const fromAt = Date.parse(`${q.from}T00:00:00Z`);
    const toAt = Date.parse(`${q.to}T00:00:00Z`) + DAY;
    if (!(toAt > fromAt)) throw new ApiError("VALIDATION_FAILED", "The range must run forward.", { errors: [{ path: "to", message: "must be on or after from" }] });
    const principal = await authorize(c, { action: "export.read", roles: ROLES });
    const audit = auditor(c.env, principal, c.var.requestId);
    const details = { dataset, from: q.from, to: q.to, format: q.format, officeId: q.officeId ?? null };
    // On record before the first byte leaves.
    await audit.platform({ action: "export.read", outcome: "allowed", officeId: q.officeId ?? null, details });
    const body = exportStream(c.var.db, datasets[dataset], { fromAt, toAt, officeId: q.officeId }, q.format, (rows) =>
      audit.platform({ action: "export.read", outcome: "succeeded", officeId: q.officeId ?? null, details: { ...details, rows } }),
    );
    const type = q.format === "csv" ? "text/csv; charset=utf-8; header=present" : "application/x-ndjson; charset=utf-8";
    return c.body(body, 200, {
      "content-type": type,
      "content-disposition": `attachment; filename="${dataset}-${q.from}-${q.to}.${q.format}"`,
      "cache-control": "no-store",
    });
  });
}
