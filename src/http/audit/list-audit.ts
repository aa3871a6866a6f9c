import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, gte, lt, type SQL } from "drizzle-orm";
import { auditLog } from "../../db/audit";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../../security/encoding";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";
import { AuditEntrySchema, auditView } from "./view";
import { text } from "../text";

export const ROLES = ["platform_admin"] as const;
const NDJSON = "application/x-ndjson";
const EXPORT_PAGE = 500;

const QuerySchema = z
  .object({
    officeId: OfficeIdSchema.optional(),
    from: z.string().datetime({ offset: true }).optional().openapi({ description: "Inclusive lower bound on the entry time (ISO 8601)." }),
    to: z.string().datetime({ offset: true }).optional().openapi({ description: "Exclusive upper bound on the entry time (ISO 8601)." }),
    cursor: text({ max: 200 }).optional().openapi({ description: "`nextCursor` of the previous page." }),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();

const PageSchema = z
  .object({ data: z.array(AuditEntrySchema), nextCursor: z.string().nullable() })
  .openapi("AuditPage");

export const route = createRoute({
  method: "get",
  path: "/v1/audit",
  operationId: "listAudit",
  tags: ["Audit"],
  summary: "List audit entries (platform_admin)",
  description:
    "Entries in the order they were written, filtered by office and time. JSON pages with a cursor, or the whole selection as NDJSON with `Accept: application/x-ndjson`. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { query: QuerySchema },
  responses: {
    200: {
      description: "A page of entries, or the NDJSON export.",
      content: { "application/json": { schema: PageSchema }, [NDJSON]: { schema: z.string() } },
    },
    ...problemResponses(400, 401, 403),
  },
});

function decodeCursor(cursor: string): number {
  const bytes = fromBase64Url(cursor);
  const id = bytes ? Number(/^\{"after":(\d{1,15})\}$/.exec(fromUtf8(bytes))?.[1]) : NaN;
  if (!Number.isSafeInteger(id)) throw new ApiError("VALIDATION_FAILED", "The cursor is not one this API issued.", { errors: [{ path: "cursor", message: "invalid cursor" }] });
  return id;
}
const encodeCursor = (id: number) => toBase64Url(utf8(`{"after":${id}}`));

export function register(app: App) {
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const principal = await authorize(c, { action: "audit.list", roles: ROLES });
    const filters: SQL[] = [];
    if (q.officeId) filters.push(eq(auditLog.officeId, q.officeId));
    if (q.from) filters.push(gte(auditLog.at, Date.parse(q.from)));
    if (q.to) filters.push(lt(auditLog.at, Date.parse(q.to)));
    const after = q.cursor ? decodeCursor(q.cursor) : 0;
    const page = (afterId: number, limit: number) =>
      c.var.db.select().from(auditLog).where(and(gt(auditLog.id, afterId), ...filters)).orderBy(asc(auditLog.id)).limit(limit);

    const exporting = (c.req.header("accept") ?? "").includes(NDJSON);
    await auditor(c.env, principal, c.var.requestId).platform({
      action: exporting ? "audit.export" : "audit.list",
      outcome: "allowed",
      officeId: q.officeId ?? null,
      details: { from: q.from ?? null, to: q.to ?? null },
    });

    if (exporting) {
      // Pulled page by page as the client reads: memory stays bounded whatever the export's size.
      const encoder = new TextEncoder();
      let cursor = after;
      let done = false;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (done) return controller.close();
          const rows = await page(cursor, EXPORT_PAGE);
          if (rows.length < EXPORT_PAGE) done = true;
          if (rows.length > 0) {
            cursor = rows.at(-1)!.id;
            controller.enqueue(encoder.encode(rows.map((row) => `${JSON.stringify(auditView(row))}\n`).join("")));
          }
          if (done) controller.close();
        },
      });
      return new Response(body, { status: 200, headers: { "content-type": NDJSON, "x-request-id": c.var.requestId } }) as never;
    }
    const rows = await page(after, q.limit + 1);
    const more = rows.length > q.limit;
    const data = rows.slice(0, q.limit).map(auditView);
    return c.json({ data, nextCursor: more ? encodeCursor(data.at(-1)!.id) : null }, 200);
  });
}
