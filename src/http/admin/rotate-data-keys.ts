import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import { dataKeyring, encryptedColumns, reencrypt } from "../../security/data-keys";
import type { App } from "../context";
import { officeScope, readColumnCursor, writeColumnCursor } from "./column-cursor";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { text } from "../text";

export const ROLES = ["platform_admin"] as const;

const BodySchema = z
  .object({
    batchSize: z.number().int().min(1).max(500).default(100).openapi({ description: "Rows re-encrypted per column in this call." }),
    cursor: text({ max: 200 }).optional().openapi({ description: "`nextCursor` of the previous call: continue after the rows it examined." }),
    officeId: OfficeIdSchema.optional().openapi({ description: "Only this office's rows." }),
  })
  .strict()
  .openapi("RotateDataKeysRequest");

const ResultSchema = z
  .object({
    currentKeyId: z.string().openapi({ example: "k2" }),
    reencrypted: z.number().int().openapi({ description: "Rows re-encrypted by this call." }),
    unreadable: z.number().int().openapi({ description: "Rows this call could not decrypt (unknown key id or damaged value); they are skipped and reported in the audit trail." }),
    remaining: z.number().int().openapi({ description: "Rows still under an older key (unreadable ones included)." }),
    nextCursor: z.string().nullable().openapi({ description: "Pass back to continue; null when this pass has examined every row." }),
  })
  .openapi("RotateDataKeysResult");

export const route = createRoute({
  method: "post",
  path: "/v1/admin/data-keys/rotate",
  operationId: "rotateDataKeys",
  tags: ["Admin"],
  summary: "Re-encrypt stored provider references under the current data key (platform_admin)",
  description:
    "After `DATA_ENCRYPTION_KEY` gains a new first key (`k2:...,k1:...`), each call re-encrypts up to `batchSize` rows per column that are still under an older key, continuing from `cursor`. `npm run keys:rotate` calls it until `nextCursor` is null and reports what remains; the old key can be removed once nothing does. Each update is a compare-and-swap on the stored value, so it never overwrites a newer one. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: false, content: { "application/json": { schema: BodySchema } } } },
  responses: {
    200: { description: "What this call did and what remains.", content: { "application/json": { schema: ResultSchema } } },
    ...problemResponses(400, 401, 403),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const body = BodySchema.parse(c.req.valid("json") ?? {});
    const principal = await authorize(c, { action: "data_keys.rotate", roles: ROLES });
    const ring = await dataKeyring(c.var.config);
    const db = c.var.db;
    const notCurrent = (column: string) => sql.raw(`${column} IS NOT NULL AND substr(${column}, 1, ${ring.current.length + 1}) != '${ring.current}.'`);
    const scope = officeScope(body.officeId);

    const after = readColumnCursor(body.cursor);
    // One read round trip for every column's batch, one write round trip for all the swaps.
    const reads = encryptedColumns.map((col, i) =>
      db.all<{ id: string; ref: string }>(
        sql`SELECT ${sql.raw(col.id)} AS id, ${sql.raw(col.column)} AS ref FROM ${sql.raw(col.table)} WHERE ${notCurrent(col.column)}${scope(col.table)} AND ${sql.raw(col.id)} > ${after[i]!} ORDER BY ${sql.raw(col.id)} LIMIT ${body.batchSize}`,
      ),
    );
    const batches = (await db.batch(reads as never)) as unknown as { id: string; ref: string }[][];
    const updates = [];
    let unreadable = 0;
    const next = [...after];
    for (const [i, col] of encryptedColumns.entries()) {
      for (const row of batches[i]!) {
        next[i] = row.id;
        let sealed: string | null;
        try {
          sealed = await reencrypt(ring, col, row.id, row.ref);
        } catch {
          unreadable++;
          continue;
        }
        if (sealed) updates.push(db.run(sql`UPDATE ${sql.raw(col.table)} SET ${sql.raw(col.column)} = ${sealed} WHERE ${sql.raw(col.id)} = ${row.id} AND ${sql.raw(col.column)} = ${row.ref}`));
      }
    }
    const counts = encryptedColumns.map((col) => db.all<{ n: number }>(sql`SELECT count(*) AS n FROM ${sql.raw(col.table)} WHERE ${notCurrent(col.column)}${scope(col.table)}`));
    const results = (await db.batch([...updates, ...counts] as never)) as unknown as unknown[];
    const remaining = (results.slice(updates.length) as { n: number }[][]).reduce((sum, r) => sum + Number(r[0]!.n), 0);
    const reencrypted = (results.slice(0, updates.length) as { rowsAffected: number }[]).reduce((sum, r) => sum + r.rowsAffected, 0);
    const more = batches.some((b) => b.length === body.batchSize);
    const nextCursor = more ? writeColumnCursor(next) : null;
    await auditor(c.env, principal, c.var.requestId).platform({
      action: "data_keys.rotate",
      outcome: "succeeded",
      officeId: body.officeId ?? null,
      details: { currentKeyId: ring.current, reencrypted, unreadable, remaining },
    });
    return c.json({ currentKeyId: ring.current, reencrypted, unreadable, remaining, nextCursor }, 200);
  });
}
