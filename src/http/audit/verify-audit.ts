import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, or } from "drizzle-orm";
import { loadConfig } from "../../config";
import { auditLog } from "../../db/audit";
import { unwrap } from "../../office/result";
import { auditor } from "../../security/audit";
import { ChainVerifier, PLATFORM_CHAIN } from "../../security/audit-chain";
import { authorize } from "../../security/auth";
import { auditKeyring } from "../../security/data-keys";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";

const BrokenSchema = z.object({ id: z.number().int().optional(), segment: z.string(), seq: z.number().int(), reason: z.string() });

const VerdictSchema = z
  .object({
    chain: z.string().openapi({ example: "platform" }),
    ok: z.boolean(),
    entries: z.number().int().openapi({ description: "Entries examined." }),
    head: z
      .object({ segment: z.string(), seq: z.number().int(), hash: z.string() })
      .nullable()
      .openapi({ description: "The head the chain's writer recorded (null before its first entry)." }),
    segments: z.number().int().openapi({ description: "Segments of the chain: one per writer run, and a new one after each fenced break." }),
    unanchoredSegments: z.number().int().openapi({ description: "Segments the writer has no record of: checked entry by entry (MAC, links), not against a recorded head." }),
    fences: z
      .array(z.object({ segment: z.string(), seq: z.number().int(), reason: z.string(), at: z.number().int().nullable() }))
      .openapi({ description: "Breaks the writer found and fenced off: the segment it closed at its recorded head `seq`, and why." }),
    firstBroken: BrokenSchema.optional().openapi({ description: "The first entry that does not verify, when `ok` is false." }),
  })
  .openapi("AuditVerdict");

export const route = createRoute({
  method: "get",
  path: "/v1/audit/verify",
  operationId: "verifyAudit",
  tags: ["Audit"],
  summary: "Verify an audit chain (platform_admin)",
  description:
    "Recomputes the MAC chain of an office (or the platform chain when `officeId` is omitted) under the AUDIT_KEY keyring and compares each segment with what its single writer recorded. Reports ok, or the first broken entry: edited, deleted, reordered, truncated, forged (a bad MAC, an unkeyed entry) or beyond the recorded head. A broken chain is a verdict (200, `ok: false`), never an error. Required role: platform_admin.",
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
    // The writer's record is asked before the entries are read (everything it had recorded must be
    // there) and after (nothing may lie beyond what it has recorded or has in flight by then).
    const anchor = async () =>
      officeId
        ? unwrap(await c.env.OFFICE_BILLING.get(c.env.OFFICE_BILLING.idFromName(officeId)).auditAnchor(officeId))
        : unwrap(await c.env.PLATFORM_AUDIT.get(c.env.PLATFORM_AUDIT.idFromName(PLATFORM_CHAIN)).anchor());
    const verifier = new ChainVerifier(await auditKeyring(loadConfig(c.env)), await anchor());
    // Page by page in (segment, seq) order, never more than one page in memory.
    for (let after: { segment: string; seq: number } | null = null; ; ) {
      const rows: (typeof auditLog.$inferSelect)[] = await c.var.db
        .select()
        .from(auditLog)
        .where(
          and(
            eq(auditLog.chain, chain),
            after ? or(gt(auditLog.segment, after.segment), and(eq(auditLog.segment, after.segment), gt(auditLog.seq, after.seq))) : undefined,
          ),
        )
        .orderBy(asc(auditLog.segment), asc(auditLog.seq))
        .limit(PAGE);
      await verifier.push(rows);
      if (rows.length < PAGE) break;
      after = { segment: rows.at(-1)!.segment, seq: rows.at(-1)!.seq };
    }
    const verdict = verifier.finish(await anchor());
    await auditor(c.env, principal, c.var.requestId).platform({
      action: "audit.verify",
      outcome: "allowed",
      officeId: officeId ?? null,
      details: { chain, ok: verdict.ok, entries: verdict.entries },
    });
    return c.json({ chain, ...verdict }, 200);
  });
}
