import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { epochMs } from "./columns";

/**
 * Append-only audit trail. Entries form MAC chains: one per office (chain = office id), appended
 * through that office's Durable Object, and one `platform` chain. A chain is made of segments
 * (one per run of its single writer; a new one after a fenced break); `seq` counts from 1 in each.
 * `hash` is HMAC-SHA256 under the AUDIT_KEY named by `key_id` over the previous entry's `hash`
 * and this entry's canonical content (see src/security/audit-chain.ts). Entries written before
 * keyed chains have `key_id` NULL and segment `legacy`: unkeyed SHA-256. Triggers forbid UPDATE
 * and DELETE.
 */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    chain: text("chain").notNull(),
    segment: text("segment").notNull().default("legacy"),
    seq: integer("seq").notNull(),
    at: epochMs("at").notNull(),
    actorSub: text("actor_sub").notNull(),
    actorRole: text("actor_role").notNull(),
    action: text("action").notNull(),
    officeId: text("office_id"),
    targetIds: text("target_ids", { mode: "json" }).$type<string[]>().notNull(),
    outcome: text("outcome", { enum: ["allowed", "denied", "succeeded", "failed", "blocked", "rejected", "accepted"] }).notNull(),
    requestId: text("request_id"),
    details: text("details", { mode: "json" }).$type<Record<string, unknown>>(),
    prevHash: text("prev_hash").notNull(),
    keyId: text("key_id"),
    hash: text("hash").notNull(),
  },
  (t) => [
    uniqueIndex("audit_log_chain_segment_seq_uq").on(t.chain, t.segment, t.seq),
    index("audit_log_office_at_ix").on(t.officeId, t.at),
    index("audit_log_at_ix").on(t.at),
    check("audit_log_seq_ck", sql`${t.seq} >= 1`),
  ],
);
