import { z } from "@hono/zod-openapi";
import type { auditLog } from "../../db/audit";

export const AuditEntrySchema = z
  .object({
    id: z.number().int(),
    chain: z.string().openapi({ description: "`platform` or the office id", example: "platform" }),
    segment: z.string().openapi({ description: "The chain's segment: one per run of its writer, and a new one after a fenced break; `legacy` for entries from before keyed chains.", example: "seg_3f9a0c2d4e5b60718293a4b5c6d7e8f9" }),
    seq: z.number().int().openapi({ description: "Position in the segment, from 1.", example: 42 }),
    at: z.string().datetime().openapi({ example: "2026-11-22T10:15:00.000Z" }),
    actor: z.object({ sub: z.string(), role: z.string() }).openapi({ example: { sub: "user_123", role: "office_admin" } }),
    action: z.string().openapi({ example: "audit.list" }),
    officeId: z.string().nullable(),
    targetIds: z.array(z.string()),
    outcome: z.string().openapi({ example: "allowed" }),
    requestId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
    keyId: z.string().nullable().openapi({ description: "The AUDIT_KEY id of the entry's MAC; null for legacy (unkeyed SHA-256) entries.", example: "a1" }),
    prevHash: z.string().length(64).openapi({ example: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" }),
    hash: z.string().length(64).openapi({ description: "HMAC-SHA256 of the previous entry's `hash` and this entry's canonical content." }).openapi({ example: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752" }),
  })
  .openapi("AuditEntry");

export type AuditEntryView = z.infer<typeof AuditEntrySchema>;

export function auditView(row: typeof auditLog.$inferSelect): AuditEntryView {
  return {
    id: row.id,
    chain: row.chain,
    segment: row.segment,
    seq: row.seq,
    at: new Date(row.at).toISOString(),
    actor: { sub: row.actorSub, role: row.actorRole },
    action: row.action,
    officeId: row.officeId,
    targetIds: row.targetIds,
    outcome: row.outcome,
    requestId: row.requestId,
    details: row.details ?? null,
    keyId: row.keyId,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}
