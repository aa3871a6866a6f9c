import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { epochMs } from "./columns";

/**
 * Append-only audit trail. Entries form hash chains: one per office (chain = office id), appended
 * through that office's Durable Object, and one `platform` chain. `hash` is SHA-256 over the
 * previous entry's hash and this entry's canonical content. Triggers forbid UPDATE and DELETE.
 */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    chain: text("chain").notNull(),
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
    hash: text("hash").notNull(),
  },
  (t) => [
    uniqueIndex("audit_log_chain_seq_uq").on(t.chain, t.seq),
    index("audit_log_office_at_ix").on(t.officeId, t.at),
    index("audit_log_at_ix").on(t.at),
    check("audit_log_seq_ck", sql`${t.seq} >= 1`),
  ],
);
