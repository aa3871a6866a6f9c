import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { ApiError } from "../http/problem";
import { failure, ok, type OfficeResult } from "./result";

export type OfficeObjectInfo = {
  officeId: string;
  operations: number;
  lastOperation: string | null;
  lastOperationAt: number | null;
};

/**
 * One instance per office (addressed by `idFromName(officeId)`): the single writer of that office's
 * billing state. Durable Object input gates do not hold across outbound fetches (our database is
 * reached over HTTP), so operations are additionally queued here and run strictly one at a time.
 *
 * Its own SQLite storage keeps only the office it is bound to and an operation ledger; the
 * billing data lives in Turso. Public methods are the RPC surface; they return OfficeResult.
 */
export class OfficeBilling extends DurableObject<Env> {
  #tail: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS office_meta (id INTEGER PRIMARY KEY CHECK (id = 1), office_id TEXT NOT NULL, operations INTEGER NOT NULL DEFAULT 0, last_operation TEXT, last_operation_at INTEGER)",
    );
  }

  /** Binds this object to its office on first use; a mismatch means a routing bug and is refused. */
  protected bind(officeId: string): void {
    const row = this.ctx.storage.sql.exec<{ office_id: string }>("SELECT office_id FROM office_meta WHERE id = 1").toArray()[0];
    if (!row) {
      this.ctx.storage.sql.exec("INSERT INTO office_meta (id, office_id) VALUES (1, ?)", officeId);
    } else if (row.office_id !== officeId) {
      throw new ApiError("CONFLICT", "This office object is bound to a different office.");
    }
  }

  /**
   * Runs `fn` after every operation queued before it has settled, so operations of one office
   * never interleave, even across awaits on network I/O. A failing operation does not stop the
   * queue; it comes back as a failure result.
   */
  protected exclusive<T>(officeId: string, operation: string, fn: () => Promise<T>): Promise<OfficeResult<T>> {
    const run = async (): Promise<OfficeResult<T>> => {
      try {
        this.bind(officeId);
        return ok(await fn());
      } catch (err) {
        return failure(err);
      } finally {
        this.ctx.storage.sql.exec(
          "UPDATE office_meta SET operations = operations + 1, last_operation = ?, last_operation_at = ? WHERE id = 1",
          operation,
          Date.now(),
        );
      }
    };
    const result = this.#tail.then(run, run);
    this.#tail = result;
    return result;
  }

  /** What this object knows about itself: its office and the operations it has run. */
  async info(officeId: string): Promise<OfficeResult<OfficeObjectInfo>> {
    try {
      this.bind(officeId);
    } catch (err) {
      return failure(err);
    }
    const row = this.ctx.storage.sql
      .exec<{ office_id: string; operations: number; last_operation: string | null; last_operation_at: number | null }>(
        "SELECT office_id, operations, last_operation, last_operation_at FROM office_meta WHERE id = 1",
      )
      .one();
    return ok({
      officeId: row.office_id,
      operations: row.operations,
      lastOperation: row.last_operation,
      lastOperationAt: row.last_operation_at,
    });
  }
}
