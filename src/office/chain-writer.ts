import { desc, eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { auditLog } from "../db/audit";
import { dbErrorMatches } from "../db/errors";
import { GENESIS_HASH, seal, type AuditContent } from "../security/audit-chain";

/** What a caller says about an audited event; the writer adds chain, sequence, time and hashes. */
export type AuditInput = {
  action: string;
  outcome: AuditContent["outcome"] & string;
  actorSub: string;
  actorRole: string;
  officeId: string | null;
  targetIds?: string[];
  requestId?: string | null;
  details?: Record<string, unknown> | null;
  at?: number;
};

type Head = { seq: number; hash: string };

const MAX_APPEND_ATTEMPTS = 8;

/**
 * Appends entries to one audit hash chain. It lives inside the Durable Object that is the chain's
 * single writer, so appends are linear. The chain head is kept in the object's own storage, so an
 * append costs no extra database read: the entries' INSERT goes into the same batch as the change
 * it records, and the head advances only once that batch has committed. If the database is ahead
 * of the stored head (a batch whose answer was lost), the unique (chain, seq) index refuses the
 * insert; the writer then re-reads the head from the database and the caller retries.
 */
export class ChainWriter {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly chain: string,
  ) {
    storage.sql.exec("CREATE TABLE IF NOT EXISTS audit_head (chain TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL)");
  }

  /** The head as this writer recorded it (null before the first entry). */
  head(): Head | null {
    return this.storage.sql.exec<Head>("SELECT seq, hash FROM audit_head WHERE chain = ?", this.chain).toArray()[0] ?? null;
  }

  private setHead(head: Head) {
    this.storage.sql.exec(
      "INSERT INTO audit_head (chain, seq, hash) VALUES (?, ?, ?) ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
      this.chain,
      head.seq,
      head.hash,
    );
  }

  /** Re-reads the head from the database (after a refused insert, or on first use). */
  async reload(db: Database): Promise<Head | null> {
    const [row] = await db
      .select({ seq: auditLog.seq, hash: auditLog.hash })
      .from(auditLog)
      .where(eq(auditLog.chain, this.chain))
      .orderBy(desc(auditLog.seq))
      .limit(1);
    if (row) this.setHead(row);
    return row ?? null;
  }

  /**
   * Seals `inputs` after the current head and returns the INSERT to put in the caller's batch and
   * `commit`, to call once that batch has succeeded.
   */
  async prepare(db: Database, inputs: AuditInput[]): Promise<{ insert: BatchItem<"sqlite">; commit: () => void }> {
    let head = this.head() ?? (await this.reload(db)) ?? { seq: 0, hash: GENESIS_HASH };
    const now = Date.now();
    const rows = [];
    for (const input of inputs) {
      const content: AuditContent = {
        chain: this.chain,
        seq: head.seq + 1,
        at: input.at ?? now,
        actorSub: input.actorSub,
        actorRole: input.actorRole,
        action: input.action,
        officeId: input.officeId,
        targetIds: input.targetIds ?? [],
        outcome: input.outcome,
        requestId: input.requestId ?? null,
        details: input.details ?? null,
      };
      const entry = await seal(head.hash, content);
      rows.push(entry);
      head = { seq: entry.seq, hash: entry.hash };
    }
    const last = head;
    return {
      insert: db.insert(auditLog).values(rows as (typeof auditLog.$inferInsert)[]),
      commit: () => this.setHead(last),
    };
  }

  /**
   * Appends on its own (one round trip). After a refused insert it re-reads the head and tries
   * again, a few times: normally the head is stale only after a lost answer, but a second writer
   * (two instances of the object during a failover, or parallel test runtimes) must not lose entries.
   */
  async append(db: Database, inputs: AuditInput[]): Promise<Head> {
    for (let attempt = 1; ; attempt++) {
      const { insert, commit } = await this.prepare(db, inputs);
      try {
        await db.batch([insert]);
        commit();
        return this.head()!;
      } catch (err) {
        if (attempt >= MAX_APPEND_ATTEMPTS || !isChainConflict(err)) throw err;
        await this.reload(db);
      }
    }
  }
}

/** True when an insert was refused because the chain already has that sequence number. */
export const isChainConflict = (err: unknown) => dbErrorMatches(err, /UNIQUE constraint failed: audit_log\.chain, audit_log\.seq/);

