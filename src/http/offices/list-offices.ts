import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, sql, type SQL } from "drizzle-orm";
import { isTimeZone } from "../../billing/calendar";
import { officeStatuses, offices } from "../../db/offices";
import { planVersions } from "../../db/plans";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../../security/encoding";
import type { App } from "../context";
import { ApiError, problemResponses } from "../problem";
import { text } from "../text";
import { OfficeSchema, officeView } from "./view";

export const ROLES = ["platform_admin"] as const;

const sorts = ["createdAt", "legalName"] as const;
const orders = ["asc", "desc"] as const;

const QuerySchema = z
  .object({
    status: z.enum(officeStatuses).optional(),
    planId: z.string().regex(/^plan_[0-9a-f]{32}$/, "must be a plan id (plan_…)").optional().openapi({ description: "Offices on any version of this plan." }),
    planVersionId: z.string().regex(/^planv_[0-9a-f]{32}$/, "must be a plan version id (planv_…)").optional(),
    timeZone: text({ max: 64 }).refine(isTimeZone, "must be an IANA time zone").optional().openapi({ example: "America/New_York" }),
    legalNamePrefix: text({ max: 100 })
      .optional()
      .openapi({ description: "Offices whose legal name starts with this text (ASCII letters match in either case).", example: "Lakeside" }),
    sort: z.enum(sorts).default("createdAt"),
    order: z.enum(orders).optional().openapi({ description: "Default: `desc` for `createdAt` (newest first), `asc` for `legalName`." }),
    cursor: text({ max: 400 }).optional().openapi({ description: "`nextCursor` of the previous page (the same filters, sort and order)." }),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .strict();

export const route = createRoute({
  method: "get",
  path: "/v1/offices",
  operationId: "listOffices",
  tags: ["Offices"],
  summary: "List and search offices (platform_admin)",
  description:
    "Filter by status, plan (or plan version) and time zone; search by legal-name prefix; sort by creation time or legal name; paginated with `nextCursor`. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { query: QuerySchema },
  responses: {
    200: {
      description: "A page of offices.",
      content: { "application/json": { schema: z.object({ data: z.array(OfficeSchema), nextCursor: z.string().nullable() }).openapi("OfficePage") } },
    },
    ...problemResponses(400, 401, 403),
  },
});

type Query = z.infer<typeof QuerySchema>;
type Cursor = { sort: (typeof sorts)[number]; order: (typeof orders)[number]; value: number | string; id: string };

function badCursor(): never {
  throw new ApiError("VALIDATION_FAILED", "The cursor is not one this API issued for this sort and order.", { errors: [{ path: "cursor", message: "invalid cursor" }] });
}

function decodeCursor(cursor: string, sort: Cursor["sort"], order: Cursor["order"]): Cursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fromUtf8(fromBase64Url(cursor) ?? new Uint8Array()));
  } catch {
    badCursor();
  }
  const c = parsed as Partial<Cursor> | null;
  if (!c || c.sort !== sort || c.order !== order || typeof c.id !== "string" || !/^off_[0-9a-f]{32}$/.test(c.id)) badCursor();
  if (sort === "createdAt" ? !Number.isSafeInteger(c.value) : typeof c.value !== "string" || c.value.length > 1000) badCursor();
  return c as Cursor;
}

/** The column a listing is ordered (and its cursor compared) by. */
const sortKey = (sort: Cursor["sort"]) => (sort === "createdAt" ? sql`${offices.createdAt}` : sql`${offices.legalName} COLLATE NOCASE`);

/** `LIKE` pattern of a prefix: `%`, `_` and the escape itself taken literally. */
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;

function filtersOf(q: Query, after: Cursor | null): SQL[] {
  const filters: SQL[] = [];
  if (q.status) filters.push(eq(offices.status, q.status));
  if (q.planVersionId) filters.push(eq(offices.planVersionId, q.planVersionId));
  if (q.planId) filters.push(sql`${offices.planVersionId} IN (SELECT ${planVersions.id} FROM ${planVersions} WHERE ${planVersions.planId} = ${q.planId})`);
  if (q.timeZone) filters.push(eq(offices.timeZone, q.timeZone));
  if (q.legalNamePrefix) filters.push(sql`${offices.legalName} LIKE ${likePrefix(q.legalNamePrefix)} ESCAPE '\\'`);
  if (after) {
    const key = sortKey(after.sort);
    filters.push(after.order === "asc" ? sql`(${key}, ${offices.id}) > (${after.value}, ${after.id})` : sql`(${key}, ${offices.id}) < (${after.value}, ${after.id})`);
  }
  return filters;
}

export function register(app: App) {
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const principal = await authorize(c, { action: "office.list", roles: ROLES });
    const order = q.order ?? (q.sort === "createdAt" ? "desc" : "asc");
    const after = q.cursor ? decodeCursor(q.cursor, q.sort, order) : null;
    const key = sortKey(q.sort);
    const direction = order === "asc" ? sql`ASC` : sql`DESC`;
    const rows = await c.var.db
      .select()
      .from(offices)
      .where(and(...filtersOf(q, after)))
      .orderBy(sql`${key} ${direction}`, sql`${offices.id} ${direction}`)
      .limit(q.limit + 1);
    await auditor(c.env, principal, c.var.requestId).platform({
      action: "office.list",
      outcome: "allowed",
      officeId: null,
      details: { status: q.status ?? null, planId: q.planId ?? null, planVersionId: q.planVersionId ?? null, timeZone: q.timeZone ?? null, search: q.legalNamePrefix ? true : false, sort: q.sort, order, count: Math.min(rows.length, q.limit) },
    });
    const page = rows.slice(0, q.limit);
    const last = page.at(-1);
    const nextCursor =
      rows.length > q.limit && last
        ? toBase64Url(utf8(JSON.stringify({ sort: q.sort, order, value: q.sort === "createdAt" ? last.createdAt : last.legalName, id: last.id } satisfies Cursor)))
        : null;
    return c.json({ data: page.map(officeView), nextCursor }, 200);
  });
}
