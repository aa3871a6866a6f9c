import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, lte } from "drizzle-orm";
import { auditLog } from "../../db/audit";
import { unwrap } from "../../office/result";
import { auditor } from "../../security/audit";
import { ChainVerifier, PLATFORM_CHAIN } from "../../security/audit-chain";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";

const VerdictSchema = z
  .object({
    chain: z.string().openapi({ example: "platform" }),
    ok: z.boolean(),
    entries: z.number().int().openapi({ description: "Entries examined." }),
    head: z.object({ seq: z.number().int(), hash: z.string() }).nullable().optional(),
    firstBroken: z
      .object({ id: z.number().int().optional(), seq: z.number().int(), reason: z.string() })
      .optional()
      .openapi({ description: "The first entry that does not verify, when `ok` is false." }),
  })
  .openapi("AuditVerdict");

export const route = createRoute({
  method: "get",
  path: "/v1/audit/verify",
  tags: ["Audit"],
  summary: "Verify an audit chain (platform_admin)",
  description:
    "Recomputes the hash chain of an office (or the platform chain when `officeId` is omitted) and compares its head with the one its single writer recorded. Reports ok, or the first broken entry: edited, deleted, reordered or truncated. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { query: z.object({ officeId: OfficeIdSchema.optional() }).strict() },
  responses: {
    200: { description: "The verdict.", content: { "application/json": { schema: VerdictSchema } } },
    ...problemResponses(400, 401, 403),
  },
});

const PAGE = 1000;

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("query");
    const principal = await authorize(c, { action: "audit.verify", roles: ["platform_admin"] });
    const chain = officeId ?? PLATFORM_CHAIN;
    // The recorded head first: entries appended while we read are then simply beyond it.
    const anchor = officeId
      ? unwrap(await c.env.OFFICE_BILLING.get(c.env.OFFICE_BILLING.idFromName(officeId)).auditHead(officeId))
      : unwrap(await c.env.PLATFORM_AUDIT.get(c.env.PLATFORM_AUDIT.idFromName("platform")).head());
    // Page by page, never more than one page in memory; entries appended while we read lie
    // beyond the anchor and are left for the next verification.
    const verifier = new ChainVerifier();
    const limit = anchor?.seq ?? Number.MAX_SAFE_INTEGER;
    for (let afterSeq = 0; !verifier.broken; ) {
      const rows = await c.var.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.chain, chain), gt(auditLog.seq, afterSeq), lte(auditLog.seq, limit)))
        .orderBy(asc(auditLog.seq), asc(auditLog.id))
        .limit(PAGE);
      await verifier.push(rows.map((r) => ({ ...r, details: r.details ?? null })));
      if (rows.length < PAGE) break;
      afterSeq = rows.at(-1)!.seq;
    }
    const verdict = verifier.finish(anchor);
    await auditor(c.env, principal, c.var.requestId).platform({
      action: "audit.verify",
      outcome: "allowed",
      officeId: officeId ?? null,
      details: { chain, ok: verdict.ok, entries: verdict.entries },
    });
    return c.json({ chain, ...verdict }, 200);
  });
}
