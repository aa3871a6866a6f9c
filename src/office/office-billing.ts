import { eq } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { dbErrorMatches } from "../db/errors";
import { offices } from "../db/offices";
import type { Env } from "../env";
import { ApiError } from "../http/problem";
import { newId } from "../security/request-id";
import { ChainWriter, isChainConflict, type AuditInput } from "./chain-writer";
import { IdempotencyStore } from "./idempotency";
import { OfficeStateCache } from "./office-state";
import { answerFrom, eventAnswerQuery, patientEventStatements, type PatientEventAnswer, type PatientEventInput } from "./patient-events";
import { failure, ok, type OfficeResult } from "./result";
import { SerializedObject } from "./serialized-object";

/** Who asked, for the audit entry the operation writes with its change. */
export type Actor = { actorSub: string; actorRole: string; requestId: string };
const MAX_WRITE_ATTEMPTS = 4;

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
  readonly #idempotency: IdempotencyStore;
  readonly #office: OfficeStateCache;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#idempotency = new IdempotencyStore(ctx.storage);
    this.#office = new OfficeStateCache(ctx.storage);
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

  /**
   * One database round trip: the operation's statements and its audit entry in one batch (one
   * transaction). Rebuilds and retries when the audit head turned out stale.
   */
  protected async write<R extends unknown[]>(officeId: string, build: () => readonly BatchItem<"sqlite">[], audit: AuditInput[]): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      const { insert, commit } = await this.chain.prepare(this.db, audit.map((a) => ({ ...a, officeId })));
      try {
        const results = (await this.db.batch([...build(), insert] as unknown as [BatchItem<"sqlite">])) as unknown as R;
        commit();
        return results;
      } catch (err) {
        if (attempt >= MAX_WRITE_ATTEMPTS || !isChainConflict(err)) throw err;
        await this.chain.reload(this.db);
      }
    }
  }

  /** Records a refused operation on the chain, then refuses it. */
  protected async refuse(officeId: string, actor: Actor, action: string, targetIds: string[], error: ApiError): Promise<never> {
    await this.chain.append(this.db, [{ ...actor, action, outcome: "failed", officeId, targetIds, details: { code: error.code, reason: error.message } }]);
    throw error;
  }

  /**
   * A patient activation or deactivation reported by the clinical system. Idempotent by key: the
   * same key and request replay the first answer (`replayed: true`), the same key with another
   * request is a conflict. The event, the patient's new state and the audit entry are written in
   * one batch.
   */
  async patientEvent(officeId: string, input: PatientEventInput, actor: Actor): Promise<OfficeResult<{ answer: PatientEventAnswer; replayed: boolean }>> {
    const action = `patient.${input.kind}`;
    return this.exclusive(officeId, action, async () => {
      const stored = this.#idempotency.get(input.idempotencyKeyHash);
      if (stored) return this.replay(stored.requestHash, stored.response as PatientEventAnswer, input.requestHash);
      const office = await this.#office.load(this.db, officeId);
      if (!office) throw new ApiError("NOT_FOUND", "No such office.");
      if (office.status === "canceled" && input.kind === "activate") {
        await this.refuse(officeId, actor, action, [input.patientKey], new ApiError("CONFLICT", "The office's subscription is canceled; it takes no activations."));
      }
      const eventId = newId("pev");
      const receivedAt = Date.now();
      let results: [unknown, unknown, unknown, { event: never; active: boolean }[]];
      try {
        results = await this.write(
          officeId,
          () => [...patientEventStatements(this.db, officeId, eventId, input, receivedAt), eventAnswerQuery(this.db, officeId, input.idempotencyKeyHash)],
          [{ ...actor, action, outcome: "succeeded", officeId, targetIds: [eventId, input.patientKey], details: { occurredAt: new Date(input.occurredAt).toISOString() } }],
        );
      } catch (err) {
        if (!isIdempotencyConflict(err)) throw err;
        // This object lost its idempotency store, but the database remembers the key.
        const [row] = await eventAnswerQuery(this.db, officeId, input.idempotencyKeyHash);
        if (!row) throw err;
        const answer = answerFrom(row.event, row.active);
        this.#idempotency.put(input.idempotencyKeyHash, { requestHash: row.event.requestHash, response: answer });
        return this.replay(row.event.requestHash, answer, input.requestHash);
      }
      const row = results[3][0] as unknown as { event: Parameters<typeof answerFrom>[0]; active: boolean };
      const answer = answerFrom(row.event, row.active);
      this.#idempotency.put(input.idempotencyKeyHash, { requestHash: input.requestHash, response: answer });
      return { answer, replayed: false };
    });
  }

  private replay(storedHash: string, answer: PatientEventAnswer, requestHash: string) {
    if (storedHash !== requestHash) {
      throw new ApiError("CONFLICT", "This Idempotency-Key was already used with a different request.");
    }
    return { answer, replayed: true };
  }

  /** The office's billing profile, read together with the audit entry of the read (one round trip). */
  async readOffice(officeId: string, actor: Actor): Promise<OfficeResult<typeof offices.$inferSelect>> {
    return this.exclusive(officeId, "office.read", async () => {
      const [rows] = await this.write<[(typeof offices.$inferSelect)[]]>(
        officeId,
        () => [this.db.select().from(offices).where(eq(offices.id, officeId))],
        [{ ...actor, action: "office.read", outcome: "allowed", officeId, targetIds: [officeId] }],
      );
      const office = rows[0];
      if (!office) throw new ApiError("NOT_FOUND", "No such office.");
      this.#office.set({ id: office.id, status: office.status });
      return office;
    });
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

/** True when the database refused a second event with the same Idempotency-Key. */
const isIdempotencyConflict = (err: unknown) =>
  dbErrorMatches(err, /UNIQUE constraint failed: patient_events\.office_id, patient_events\.idempotency_key/);
