import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { dataKeyring, indexedColumns, reindex } from "../../security/data-keys";
import type { App } from "../context";
import { officeScope, readColumnCursor, writeColumnCursor } from "./column-cursor";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { text } from "../text";

export const ROLES = ["platform_admin"] as const;

const BodySchema = z
  .object({
    batchSize: z.number().int().min(1).max(500).default(100).openapi({ description: "Rows examined per column in this call." }),
    cursor: text({ max: 200 }).optional().openapi({ description: "`nextCursor` of the previous call: continue after the rows it examined." }),
    officeId: OfficeIdSchema.optional().openapi({ description: "Only this office's rows." }),
  })
  .strict()
  .openapi("RotateDataIndexRequest");

const ResultSchema = z
  .object({
    examined: z.number().int().openapi({ description: "Rows with a stored reference this call looked at." }),
    reindexed: z.number().int().openapi({ description: "Rows whose lookup index this call rewrote under DATA_INDEX_KEY." }),
    unreadable: z.number().int().openapi({ description: "Rows this call could not decrypt (so could not re-index); skipped." }),
    nextCursor: z.string().nullable().openapi({ description: "Pass back to continue; null when this pass has examined every row." }),
  })
  .openapi("RotateDataIndexResult");

export const route = createRoute({
  method: "post",
  path: "/v1/admin/data-index/rotate",
  operationId: "rotateDataIndex",
  tags: ["Admin"],
  summary: "Recompute the lookup indexes of stored provider references under the current index key (platform_admin)",
  description:
    "After `DATA_INDEX_KEY` is replaced (the old value moved to `DATA_INDEX_KEY_PREVIOUS`, which lookups keep trying), each call decrypts up to `batchSize` stored references per column, continuing from `cursor`, and rewrites each one's HMAC index under `DATA_INDEX_KEY` where it differs. An index cannot tell which key made it, so a rotation is one whole pass: `npm run keys:rotate -- index` calls it until `nextCursor` is null; once a pass reports no unreadable row, `DATA_INDEX_KEY_PREVIOUS` can be removed. Each update is a compare-and-swap on the stored reference and index. Re-running it is harmless. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: false, content: { "application/json": { schema: BodySchema } } } },
  responses: {
    200: { description: "What this call did.", content: { "application/json": { schema: ResultSchema } } },
    ...problemResponses(400, 401, 403),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const body = BodySchema.parse(c.req.valid("json") ?? {});
    const principal = await authorize(c, { action: "data_index.rotate", roles: ROLES });
    const ring = await dataKeyring(c.var.config);
    const db = c.var.db;
    const scope = officeScope(body.officeId);
    const after = readColumnCursor(body.cursor, indexedColumns);
    // One read round trip for every column's batch, one write round trip for all the swaps.
    const reads = indexedColumns.map((col, i) =>
      db.all<{ id: string; ref: string; ix: string | null }>(
        sql`SELECT ${sql.raw(col.id)} AS id, ${sql.raw(col.column)} AS ref, ${sql.raw(col.index)} AS ix FROM ${sql.raw(col.table)} WHERE ${sql.raw(col.column)} IS NOT NULL${scope(col.table)} AND ${sql.raw(col.id)} > ${after[i]!} ORDER BY ${sql.raw(col.id)} LIMIT ${body.batchSize}`,
      ),
    );
    const batches = (await db.batch(reads as never)) as unknown as { id: string; ref: string; ix: string | null }[][];
    const updates = [];
    let unreadable = 0;
    let examined = 0;
    const next = [...after];
    for (const [i, col] of indexedColumns.entries()) {
      for (const row of batches[i]!) {
        next[i] = row.id;
        examined++;
        let index: string | null;
        try {
          index = await reindex(ring, col, row.id, row.ref, row.ix);
        } catch {
          unreadable++;
          continue;
        }
        if (index) {
          updates.push(
            db.run(sql`UPDATE ${sql.raw(col.table)} SET ${sql.raw(col.index)} = ${index} WHERE ${sql.raw(col.id)} = ${row.id} AND ${sql.raw(col.column)} = ${row.ref} AND ${sql.raw(col.index)} IS ${row.ix}`),
          );
        }
      }
    }
    const results = updates.length ? ((await db.batch(updates as never)) as unknown as { rowsAffected: number }[]) : [];
    const reindexed = results.reduce((sum, r) => sum + r.rowsAffected, 0);
    const more = batches.some((b) => b.length === body.batchSize);
    const nextCursor = more ? writeColumnCursor(next) : null;
    await auditor(c.env, principal, c.var.requestId).platform({
      action: "data_index.rotate",
      outcome: "succeeded",
      officeId: body.officeId ?? null,
      details: { examined, reindexed, unreadable, complete: nextCursor === null },
    });
    return c.json({ examined, reindexed, unreadable, nextCursor }, 200);
  });
}
