import type { Env } from "../env";
import { ApiError } from "../http/problem";
import { ChainWriter, type AuditInput } from "./chain-writer";
import { failure, ok, type OfficeResult } from "./result";
import { SerializedObject } from "./serialized-object";

export type OfficeObjectInfo = {
  officeId: string;
  operations: number;
  lastOperation: string | null;
  lastOperationAt: number | null;
};

/**
 * One instance per office (addressed by `idFromName(officeId)`): the single writer of that office's
 * billing state and of its audit chain. Its own SQLite storage keeps the office it is bound to,
 * an operation ledger and the audit chain head; the billing data lives in Turso. Public methods
 * are the RPC surface; they return OfficeResult and never throw across RPC.
 */
export class OfficeBilling extends SerializedObject {
  #chain: ChainWriter | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS office_meta (id INTEGER PRIMARY KEY CHECK (id = 1), office_id TEXT NOT NULL, operations INTEGER NOT NULL DEFAULT 0, last_operation TEXT, last_operation_at INTEGER)",
    );
  }

  /** Binds this object to its office on first use; a mismatch means a routing bug and is refused. */
  protected before(officeId: string): void {
    const row = this.ctx.storage.sql.exec<{ office_id: string }>("SELECT office_id FROM office_meta WHERE id = 1").toArray()[0];
    if (!row) {
      this.ctx.storage.sql.exec("INSERT INTO office_meta (id, office_id) VALUES (1, ?)", officeId);
    } else if (row.office_id !== officeId) {
      throw new ApiError("CONFLICT", "This office object is bound to a different office.");
    }
    this.#chain ??= new ChainWriter(this.ctx.storage, officeId);
  }

  protected override after(operation: string): void {
    this.ctx.storage.sql.exec(
      "UPDATE office_meta SET operations = operations + 1, last_operation = ?, last_operation_at = ? WHERE id = 1",
      operation,
      Date.now(),
    );
  }

  protected get chain(): ChainWriter {
    return this.#chain!;
  }

  /** Appends entries to this office's audit chain (one database round trip). */
  async audit(officeId: string, entries: AuditInput[]): Promise<OfficeResult<{ seq: number }>> {
    return this.exclusive(officeId, "audit", async () => {
      const head = await this.chain.append(this.db, entries.map((e) => ({ ...e, officeId })));
      return { seq: head.seq };
    });
  }

  /** The head of this office's audit chain as its writer recorded it: the anchor for verification. */
  async auditHead(officeId: string): Promise<OfficeResult<{ seq: number; hash: string } | null>> {
    try {
      this.before(officeId);
      return ok(this.chain.head());
    } catch (err) {
      return failure(err);
    }
  }

  /** What this object knows about itself: its office and the operations it has run. */
  async info(officeId: string): Promise<OfficeResult<OfficeObjectInfo>> {
    try {
      this.before(officeId);
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
