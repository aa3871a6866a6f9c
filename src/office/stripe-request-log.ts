import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { stripeRequests } from "../db/stripe-requests";
import { firstUseInDatabase, type RequestLogSink, type StripeRequestRow } from "../stripe/request-log";

/**
 * The office's Stripe request log, written with the outbox's own commits (docs/architecture.md,
 * "The Stripe request log"): each attempt's row is kept in the object's storage (a local,
 * synchronous write: no database round trip) and goes to `stripe_requests` in the batch of the
 * outbox's next commit — the one recording the state change the call led to. Rows left when a run
 * ends without a commit (a read, a retryable failure) are written then, in one round trip. A row
 * kept when the object restarts is written by its next commit: a log row is never lost with the
 * process, only written later; `INSERT … ON CONFLICT DO NOTHING` makes a second write of it nothing.
 */
export class BufferedRequestLog implements RequestLogSink {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly db: Database,
  ) {
    storage.sql.exec("CREATE TABLE IF NOT EXISTS stripe_request_pending (id TEXT PRIMARY KEY, idempotency_key TEXT, at INTEGER, row TEXT NOT NULL)");
  }

  /**
   * Rows a commit has written, still in storage: deleted with the next row recorded or when the run
   * ends (one storage transaction instead of one more per commit). Should the object stop first, a
   * later commit writes them again, which `ON CONFLICT DO NOTHING` makes nothing.
   */
  #written = new Set<string>();

  /** Deletes the rows commits have written (see #written). */
  #dropWritten(): void {
    for (const id of this.#written) this.storage.sql.exec("DELETE FROM stripe_request_pending WHERE id = ?", id);
    this.#written.clear();
  }

  record(row: StripeRequestRow): void {
    this.#dropWritten();
    this.storage.sql.exec(
      "INSERT OR IGNORE INTO stripe_request_pending (id, idempotency_key, at, row) VALUES (?, ?, ?, ?)",
      row.id,
      row.idempotencyKey ?? null,
      row.finishedAt ?? null,
      JSON.stringify(row),
    );
  }

  /** First uses read from the database with the run's work (StripeOutbox.readWork): no round trip for those keys. */
  #known = new Map<string, number | null>();

  /**
   * Sets the first uses the run read with its work (a new map for each run; empty when it ends).
   * Exact for what it decides: rows of a key written since are this run's own, too recent for a look-up.
   */
  prime(known: Map<string, number | null>): void {
    this.#known = known;
  }

  /** The key's first use: the earliest of our kept rows and the database's. */
  async firstUse(key: string): Promise<number | null> {
    const local = this.storage.sql.exec<{ at: number | null }>("SELECT MIN(at) AS at FROM stripe_request_pending WHERE idempotency_key = ?", key).toArray()[0]?.at ?? null;
    const stored = this.#known.has(key) ? this.#known.get(key)! : await firstUseInDatabase(this.db, key);
    return local === null ? stored : stored === null ? local : Math.min(local, stored);
  }

  /** How many rows wait for a commit. */
  pending(): number {
    return (this.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM stripe_request_pending").toArray()[0]?.n ?? 0) - this.#written.size;
  }

  /**
   * The kept rows as statements for a commit's batch (none: an empty list), and their ids, to
   * forget once that batch has committed.
   */
  take(): { statements: BatchItem<"sqlite">[]; ids: string[] } {
    const kept = this.storage.sql.exec<{ id: string; row: string }>("SELECT id, row FROM stripe_request_pending ORDER BY rowid").toArray().filter((k) => !this.#written.has(k.id));
    if (kept.length === 0) return { statements: [], ids: [] };
    const rows = kept.map((k) => JSON.parse(k.row) as StripeRequestRow);
    return { statements: [this.db.insert(stripeRequests).values(rows).onConflictDoNothing({ target: stripeRequests.id })], ids: kept.map((k) => k.id) };
  }

  /** Forgets rows their commit wrote (deleted from storage with the next write, see #written). */
  forget(ids: string[]): void {
    for (const id of ids) this.#written.add(id);
  }

  /** Writes the kept rows on their own (one round trip; nothing kept: none), then deletes what commits wrote. */
  async flush(): Promise<void> {
    const { statements, ids } = this.take();
    if (statements.length > 0) {
      await this.db.batch(statements as unknown as [BatchItem<"sqlite">]);
      this.forget(ids);
    }
    this.#dropWritten();
  }
}

