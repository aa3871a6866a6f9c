import { and, asc, eq, gt, sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { auditLog } from "../db/audit";
import { dbErrorMatches, isConstraintViolation } from "../db/errors";
import { ApiError } from "../errors";
import {
  checkpointMac,
  contentOf,
  entryMac,
  GENESIS_HASH,
  LEGACY_SEGMENT,
  PLATFORM_CHAIN,
  seal,
  type AuditCheckpoint,
  type AuditContent,
  type AuditEntry,
  type AuditKeyring,
  type ChainAnchor,
  type SegmentRecord,
} from "../security/audit-chain";
import { newId } from "../security/request-id";
import * as clock from "../clock";

/** What a caller says about an audited event; the writer adds chain, sequence, time and MACs. */
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

type Head = { segment: string; seq: number; hash: string };
type Pending = { segment: string; seq: number; hash: string };

const MAX_APPEND_ATTEMPTS = 5;
/** Conditional inserts of more entries than this go as one JSON argument (see prepare). */
const MAX_UNION_ROWS = 100;

/** A short random pause before retrying a refused append. */
export const conflictBackoff = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 10 * attempt)));

/**
 * Appends entries to one audit chain. It lives inside the Durable Object that is the chain's
 * single writer, so appends are linear. Everything the writer knows about its chain is kept in
 * the object's own storage, never taken from the database: each segment it wrote (where it
 * started, its head) and, while a batch is in flight, the head that batch will reach (`pending`).
 * An append costs no extra database read: the entries' INSERT goes into the same batch as the
 * change it records, and the head advances once that batch has committed.
 *
 * The writer adopts only heads it recorded itself: after a lost answer, the entries in the
 * database beyond its head are adopted only if they end exactly at the pending head it recorded
 * before sending them and every one carries a valid MAC. Anything else beyond its head (an entry
 * inserted by someone holding the database token, whatever its links) is a break: the writer
 * fences it off (closes the segment at its recorded head, logs an error-level alert) and goes on
 * in a new segment whose first entry records the break and links to the last good head. Appends
 * never stop, and verification reports the break.
 */
export class ChainWriter {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly chain: string,
    private readonly keyring: () => Promise<AuditKeyring>,
  ) {
    const x = (q: string) => storage.sql.exec(q);
    x("CREATE TABLE IF NOT EXISTS audit_head (chain TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL)");
    x(
      "CREATE TABLE IF NOT EXISTS audit_segments (chain TEXT NOT NULL, segment TEXT NOT NULL, ord INTEGER NOT NULL, start_prev TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, closed_reason TEXT, closed_at INTEGER, fence TEXT, PRIMARY KEY (chain, segment))",
    );
    x("CREATE TABLE IF NOT EXISTS audit_pending (chain TEXT PRIMARY KEY, segment TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL)");
    // A writer from before keyed chains recorded only its head: that is its legacy segment.
    if (this.segments().length === 0) {
      const old = storage.sql.exec<{ seq: number; hash: string }>("SELECT seq, hash FROM audit_head WHERE chain = ?", chain).toArray()[0];
      if (old) {
        storage.sql.exec(
          "INSERT INTO audit_segments (chain, segment, ord, start_prev, seq, hash) VALUES (?, ?, 1, ?, ?, ?)",
          chain,
          LEGACY_SEGMENT,
          GENESIS_HASH,
          old.seq,
          old.hash,
        );
      }
    }
  }

  /** Every segment this writer wrote, oldest first; the last one is open. */
  private segments(): (SegmentRecord & { fence: string | null })[] {
    return this.storage.sql
      .exec<{ segment: string; start_prev: string; seq: number; hash: string; closed_reason: string | null; closed_at: number | null; fence: string | null }>(
        "SELECT segment, start_prev, seq, hash, closed_reason, closed_at, fence FROM audit_segments WHERE chain = ? ORDER BY ord",
        this.chain,
      )
      .toArray()
      .map((r) => ({ segment: r.segment, startPrev: r.start_prev, seq: r.seq, hash: r.hash, closedReason: r.closed_reason, closedAt: r.closed_at, fence: r.fence }));
  }

  private open() {
    return this.segments().at(-1) ?? null;
  }

  /** The head as this writer recorded it (null before the first entry). */
  head(): Head | null {
    const open = this.open();
    if (!open) return null;
    if (open.seq > 0) return { segment: open.segment, seq: open.seq, hash: open.hash };
    // A segment opened after a fence and not yet written: the head is the last good one before it.
    const before = this.segments().filter((s) => s.seq > 0).at(-1);
    return before ? { segment: before.segment, seq: before.seq, hash: before.hash } : null;
  }

  /** What verification compares the database with: every segment as this writer recorded it. */
  anchor(): ChainAnchor {
    return { segments: this.segments().map(({ fence: _f, ...s }) => s), pending: this.pending() };
  }

  /** The entries this writer has written over all its segments. */
  count(): number {
    return this.segments().reduce((n, s) => n + s.seq, 0);
  }

  private setHead(segment: string, seq: number, hash: string) {
    this.storage.sql.exec("UPDATE audit_segments SET seq = ?, hash = ?, fence = NULL WHERE chain = ? AND segment = ?", seq, hash, this.chain, segment);
    this.storage.sql.exec("DELETE FROM audit_pending WHERE chain = ?", this.chain);
  }

  private pending(): Pending | null {
    return this.storage.sql.exec<Pending>("SELECT segment, seq, hash FROM audit_pending WHERE chain = ?", this.chain).toArray()[0] ?? null;
  }

  /** Opens a new segment linking to `startPrev`; `fence` is the entry that will open it, if any. */
  private openSegment(startPrev: string, fence: AuditInput | null) {
    const ord = this.segments().length + 1;
    this.storage.sql.exec(
      "INSERT INTO audit_segments (chain, segment, ord, start_prev, seq, hash, fence) VALUES (?, ?, ?, ?, 0, ?, ?)",
      this.chain,
      newId("seg"),
      ord,
      startPrev,
      startPrev,
      fence ? JSON.stringify(fence) : null,
    );
  }

  /**
   * Fences off a break: the open segment is closed at its recorded head, the break is logged as
   * an error-level alert, and a new segment opens whose first entry records the break.
   */
  private fence(brokenSeq: number, reason: string) {
    const open = this.open()!;
    const at = clock.now();
    this.storage.sql.exec("UPDATE audit_segments SET closed_reason = ?, closed_at = ? WHERE chain = ? AND segment = ?", reason, at, this.chain, open.segment);
    this.storage.sql.exec("DELETE FROM audit_pending WHERE chain = ?", this.chain);
    console.error(
      JSON.stringify({ level: "error", msg: "audit chain broken: segment fenced off", alert: "audit-chain-break", chain: this.chain, segment: open.segment, head: open.seq, brokenSeq, reason }),
    );
    const head = this.head();
    this.openSegment(head?.hash ?? GENESIS_HASH, {
      action: "audit.chain_fenced",
      outcome: "blocked",
      actorSub: "system",
      actorRole: "system",
      officeId: this.chain === PLATFORM_CHAIN ? null : this.chain,
      details: { fencedSegment: open.segment, recordedHead: open.seq > 0 ? { seq: open.seq, hash: open.hash } : null, brokenSeq, reason },
      at,
    });
  }

  /**
   * Settles what lies in the database beyond the recorded head of the open segment: entries that
   * end exactly at the pending head this writer recorded (a batch whose answer was lost) and all
   * carry valid MACs are adopted; nothing at all means that batch never committed; anything else
   * was not written by this writer and is fenced off.
   */
  private async settle(db: Database): Promise<void> {
    const open = this.open();
    if (!open) return;
    const pending = this.pending();
    const rows = await db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.chain, this.chain), eq(auditLog.segment, open.segment), gt(auditLog.seq, open.seq)))
      .orderBy(asc(auditLog.seq))
      .limit(pending && pending.segment === open.segment ? Math.max(1, pending.seq - open.seq + 1) : 1);
    if (rows.length === 0) {
      this.storage.sql.exec("DELETE FROM audit_pending WHERE chain = ?", this.chain);
      return;
    }
    const keyring = await this.keyring();
    let prev = open.seq > 0 ? open.hash : open.startPrev;
    let expected = open.seq + 1;
    for (const row of rows) {
      const ours =
        pending !== null &&
        pending.segment === open.segment &&
        row.seq === expected &&
        row.seq <= pending.seq &&
        row.prevHash === prev &&
        (await entryMac(keyring, row.prevHash, contentOf(row))) === row.hash &&
        (row.seq < pending.seq || row.hash === pending.hash);
      if (!ours) {
        // Adopt the part that was ours (if any) before fencing the rest off.
        if (expected > open.seq + 1) this.setHead(open.segment, expected - 1, prev);
        return this.fence(row.seq, `entry ${row.seq} beyond the recorded head (${expected - 1}) was not written by this writer`);
      }
      prev = row.hash;
      expected++;
    }
    this.setHead(open.segment, pending!.seq, pending!.hash);
  }

  /**
   * Seals `inputs` after the current head and returns the INSERT to put in the caller's batch and
   * `commit`, to call once that batch has committed the entries. With `onlyIf`, the entries are
   * inserted only when that SQL condition holds inside the batch; the caller then commits only if
   * they were. The head the batch will reach is recorded as pending before it is sent.
   */
  async prepare(db: Database, inputs: AuditInput[], onlyIf?: SQL): Promise<{ insert: BatchItem<"sqlite">; commit: () => void; abandon: () => void }> {
    if (this.pending()) await this.settle(db);
    let open = this.open();
    if (!open) {
      this.openSegment(GENESIS_HASH, null);
      open = this.open()!;
    } else if (open.segment === LEGACY_SEGMENT) {
      // Entries before keyed chains stay as the legacy segment; keyed entries go on after it.
      this.openSegment(open.hash, null);
      open = this.open()!;
    }
    const keyring = await this.keyring();
    const now = clock.now();
    const all = open.fence ? [JSON.parse(open.fence) as AuditInput, ...inputs] : inputs;
    let head = { seq: open.seq, hash: open.seq > 0 ? open.hash : open.startPrev };
    const rows: AuditEntry[] = [];
    for (const input of all) {
      const entry = await seal(keyring, head.hash, {
        chain: this.chain,
        segment: open.segment,
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
    const segment = open.segment;
    this.storage.sql.exec(
      "INSERT INTO audit_pending (chain, segment, seq, hash) VALUES (?, ?, ?, ?) ON CONFLICT (chain) DO UPDATE SET segment = excluded.segment, seq = excluded.seq, hash = excluded.hash",
      this.chain,
      segment,
      last.seq,
      last.hash,
    );
    const insert = onlyIf && rows.length > MAX_UNION_ROWS
      ? // SQLite takes at most 500 terms of a compound SELECT: a larger group goes as one JSON argument.
        db.run(
          sql`INSERT INTO audit_log (chain, segment, seq, at, actor_sub, actor_role, action, office_id, target_ids, outcome, request_id, details, key_id, prev_hash, hash) SELECT ${sql.raw(
            Array.from({ length: 15 }, (_, i) => `json_extract(value, '$[${i}]')`).join(", "),
          )} FROM json_each(${JSON.stringify(
            rows.map((r) => [r.chain, r.segment, r.seq, r.at, r.actorSub, r.actorRole, r.action, r.officeId, JSON.stringify(r.targetIds), r.outcome, r.requestId, r.details === null ? null : JSON.stringify(r.details), r.keyId, r.prevHash, r.hash]),
          )}) WHERE ${onlyIf}`,
        )
      : onlyIf
      ? db.run(
          sql`INSERT INTO audit_log (chain, segment, seq, at, actor_sub, actor_role, action, office_id, target_ids, outcome, request_id, details, key_id, prev_hash, hash) ${sql.join(
            rows.map(
              (r) =>
                sql`SELECT ${r.chain}, ${r.segment}, ${r.seq}, ${r.at}, ${r.actorSub}, ${r.actorRole}, ${r.action}, ${r.officeId}, ${JSON.stringify(r.targetIds)}, ${r.outcome}, ${r.requestId}, ${r.details === null ? null : JSON.stringify(r.details)}, ${r.keyId}, ${r.prevHash}, ${r.hash} WHERE ${onlyIf}`,
            ),
            sql` UNION ALL `,
          )}`,
        )
      : db.insert(auditLog).values(rows as (typeof auditLog.$inferInsert)[]);
    return {
      insert,
      commit: () => this.setHead(segment, last.seq, last.hash),
      abandon: () => this.storage.sql.exec("DELETE FROM audit_pending WHERE chain = ?", this.chain),
    };
  }

  /**
   * One batch (one round trip, one transaction): `statements`, then the sealed `inputs`, then
   * `trailingReads`. With `conditional`, the entries are inserted only when `auditIf` holds inside
   * the batch, and the head advances only if `recorded(results)` says they were. An insert refused
   * because the sequence number is taken means something lies beyond the recorded head: it is
   * settled (adopted if it was this writer's own lost batch, fenced off otherwise) and the batch
   * is sent again.
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
      const { insert, commit, abandon } = await this.prepare(db, inputs, opts.conditional?.auditIf);
      try {
        const items = [...(opts.statements?.() ?? []), insert, ...(opts.trailingReads?.() ?? [])];
        const results = (await db.batch(items as unknown as [BatchItem<"sqlite">])) as unknown as R;
        if (!opts.conditional || opts.conditional.recorded(results)) commit();
        else abandon();
        return results;
      } catch (err) {
        // A constraint the database reported (not the chain's own) rolled the whole batch back:
        // nothing of it is there, and the next append needs no settling read. Another error (no
        // answer, a timeout) leaves the pending head recorded: the next append settles it.
        if (!isChainConflict(err) && isConstraintViolation(err)) abandon();
        if (attempt >= MAX_APPEND_ATTEMPTS || !isChainConflict(err)) throw err;
        await this.settle(db);
        if (this.pending()) await conflictBackoff(attempt);
      }
    }
  }

  /** Appends entries on their own (one round trip). */
  async append(db: Database, inputs: AuditInput[]): Promise<Head> {
    await this.write(db, inputs);
    return this.head()!;
  }

  /**
   * The chain's checkpoint (head, entries written, time), MAC'd with the current AUDIT_KEY and
   * logged; null before the first entry.
   */
  async checkpoint(): Promise<AuditCheckpoint | null> {
    const head = this.head();
    if (!head) return null;
    const keyring = await this.keyring();
    const body = { chain: this.chain, segment: head.segment, seq: head.seq, hash: head.hash, count: this.count(), at: clock.now(), keyId: keyring.current };
    const checkpoint = { ...body, mac: await checkpointMac(keyring, body) };
    console.log(JSON.stringify({ level: "info", msg: "audit checkpoint", ...checkpoint }));
    return checkpoint;
  }
}

/** True when an insert was refused because the chain's segment already has that sequence number. */
export const isChainConflict = (err: unknown) => dbErrorMatches(err, /UNIQUE constraint failed: audit_log\.chain, audit_log\.segment, audit_log\.seq/);
