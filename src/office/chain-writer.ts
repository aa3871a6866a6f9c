import { and, asc, desc, eq, gte, sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { auditLog } from "../db/audit";
import { dbErrorMatches } from "../db/errors";
import { ApiError } from "../errors";
import { entryHash, GENESIS_HASH, seal, type AuditContent, type AuditEntry } from "../security/audit-chain";
import * as clock from "../clock";

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

const MAX_APPEND_ATTEMPTS = 20;

/** A short random pause before retrying a refused append, so competing writers spread out. */
export const conflictBackoff = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 10 * attempt)));

/**
 * Appends entries to one audit hash chain. It lives inside the Durable Object that is the chain's
 * single writer, so appends are linear. The chain head is kept in the object's own storage, so an
 * append costs no extra database read: the entries' INSERT goes into the same batch as the change
 * it records, and the head advances only once that batch has committed. If the database is ahead
 * of the recorded head (a batch whose answer was lost), the unique (chain, seq) index refuses the
 * insert; the writer then re-reads the head from the database, adopting newer entries only if
 * they extend the recorded head, and the caller retries.
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

  /**
   * Re-reads the head from the database (after a refused insert, or on first use). Entries beyond
   * the recorded head are adopted only if they extend it: the entry at the recorded sequence must
   * carry the recorded hash and every later one must link to it and match its own content.
   * Otherwise the chain was rewritten behind its writer's back, and appends stop.
   */
  async reload(db: Database): Promise<Head | null> {
    const recorded = this.head();
    if (!recorded) {
      const [row] = await db
        .select({ seq: auditLog.seq, hash: auditLog.hash })
        .from(auditLog)
        .where(eq(auditLog.chain, this.chain))
        .orderBy(desc(auditLog.seq))
        .limit(1);
      if (row) this.setHead(row);
      return row ?? null;
    }
    const rows = await db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.chain, this.chain), gte(auditLog.seq, recorded.seq)))
      .orderBy(asc(auditLog.seq));
    let head = recorded;
    for (const [i, row] of rows.entries()) {
      const extendsHead =
        i === 0
          ? row.seq === recorded.seq && row.hash === recorded.hash
          : row.seq === head.seq + 1 && row.prevHash === head.hash && (await entryHash(row.prevHash, contentOf(row))) === row.hash;
      if (!extendsHead) {
        console.error(JSON.stringify({ level: "error", msg: "audit chain does not extend its recorded head", chain: this.chain, seq: row.seq }));
        throw new ApiError("INTERNAL", "The audit chain failed its integrity check; the operation was not recorded.");
      }
      head = { seq: row.seq, hash: row.hash };
    }
    if (rows.length === 0) {
      console.error(JSON.stringify({ level: "error", msg: "audit chain lost its recorded head", chain: this.chain, seq: recorded.seq }));
      throw new ApiError("INTERNAL", "The audit chain failed its integrity check; the operation was not recorded.");
    }
    this.setHead(head);
    return head;
  }

  /**
   * Seals `inputs` after the current head and returns the INSERT to put in the caller's batch and
   * `commit`, to call once that batch has committed the entries. With `onlyIf`, the entries are
   * inserted only when that SQL condition holds inside the batch; the caller then commits only if
   * they were.
   */
  async prepare(db: Database, inputs: AuditInput[], onlyIf?: SQL): Promise<{ insert: BatchItem<"sqlite">; commit: () => void }> {
    let head = this.head() ?? (await this.reload(db)) ?? { seq: 0, hash: GENESIS_HASH };
    const now = clock.now();
    const rows: AuditEntry[] = [];
    for (const input of inputs) {
      const entry = await seal(head.hash, {
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
      });
      rows.push(entry);
      head = { seq: entry.seq, hash: entry.hash };
    }
    const last = head;
    const insert = onlyIf
      ? db.run(
          sql`INSERT INTO audit_log (chain, seq, at, actor_sub, actor_role, action, office_id, target_ids, outcome, request_id, details, prev_hash, hash) ${sql.join(
            rows.map(
              (r) =>
                sql`SELECT ${r.chain}, ${r.seq}, ${r.at}, ${r.actorSub}, ${r.actorRole}, ${r.action}, ${r.officeId}, ${JSON.stringify(r.targetIds)}, ${r.outcome}, ${r.requestId}, ${r.details === null ? null : JSON.stringify(r.details)}, ${r.prevHash}, ${r.hash} WHERE ${onlyIf}`,
            ),
            sql` UNION ALL `,
          )}`,
        )
      : db.insert(auditLog).values(rows as (typeof auditLog.$inferInsert)[]);
    return { insert, commit: () => this.setHead(last) };
  }

  /**
   * One batch (one round trip, one transaction): `statements`, then the sealed `inputs`, then
   * `trailingReads`. With `conditional`, the entries are inserted only when `auditIf` holds inside
   * the batch, and the head advances only if `recorded(results)` says they were. After a refused
   * insert it re-reads the head and tries again, a few times: normally the head is stale only
   * after a lost answer, but a second writer (two instances of the object during a failover, or
   * parallel test runtimes) must not lose entries.
   */
  async write<R extends unknown[]>(
    db: Database,
    inputs: AuditInput[],
    opts: {
      statements?: () => readonly BatchItem<"sqlite">[];
      conditional?: { auditIf: SQL; recorded: (results: R) => boolean };
      trailingReads?: () => readonly BatchItem<"sqlite">[];
    } = {},
  ): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      const { insert, commit } = await this.prepare(db, inputs, opts.conditional?.auditIf);
      try {
        const items = [...(opts.statements?.() ?? []), insert, ...(opts.trailingReads?.() ?? [])];
        const results = (await db.batch(items as unknown as [BatchItem<"sqlite">])) as unknown as R;
        if (!opts.conditional || opts.conditional.recorded(results)) commit();
        return results;
      } catch (err) {
        if (attempt >= MAX_APPEND_ATTEMPTS || !isChainConflict(err)) throw err;
        await conflictBackoff(attempt);
        await this.reload(db);
      }
    }
  }

  /** Appends entries on their own (one round trip). */
  async append(db: Database, inputs: AuditInput[]): Promise<Head> {
    await this.write(db, inputs);
    return this.head()!;
  }
}

function contentOf(row: typeof auditLog.$inferSelect): AuditContent {
  const { id: _id, prevHash: _p, hash: _h, ...content } = row;
  return { ...content, details: content.details ?? null };
}

/** True when an insert was refused because the chain already has that sequence number. */
export const isChainConflict = (err: unknown) => dbErrorMatches(err, /UNIQUE constraint failed: audit_log\.chain, audit_log\.seq/);
