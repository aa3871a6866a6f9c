import { sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { invoiceLines, invoices } from "../db/invoices";
import { type TierCharge } from "../billing/pricing";
import { offices } from "../db/offices";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { ChainWriter, type AuditInput } from "./chain-writer";
import type { AuditCheckpoint, ChainAnchor } from "../security/audit-chain";
import { type Settlement } from "../billing/minimum";
import { IdempotencyStore } from "./idempotency";
import { readActions, readQueries, type OfficeDiscountRow, type OfficeRead, type ReadResult } from "./reads";
import { failure, ok, unwrap, type OfficeResult } from "./result";
import { SerializedObject } from "./serialized-object";
import { loadConfig } from "../config";
import { auditKeyring } from "../security/data-keys";
import { StripeOutbox } from "./stripe-sync";
import * as clock from "../clock";
import { clinicalTarget, dispatchClinicalEvents } from "../clinical/delivery";


export type OfficeObjectInfo = {
  officeId: string;
  operations: number;
  lastOperation: string | null;
  lastOperationAt: number | null;
};

/** Who asked, for the audit entry the operation writes with its change. */
export type Actor = { actorSub: string; actorRole: string; requestId: string };



/** The upcoming invoice (aggregates only). */
export type UpcomingInvoice = {
  office: { id: string; status: string; cancelAtPeriodEnd: boolean };
  invoice: typeof invoices.$inferSelect;
  /** The lines the close would leave: tier lines (no id yet) in place of the running count, no zero-amount line. */
  lines: (Omit<typeof invoiceLines.$inferSelect, "id"> & { id: string | null })[];
  patients: { billable: number; included: number; tiers: TierCharge[] };
  next: { periodStart: string; periodEnd: string; planVersionId: string; planId: string | null; planChanged: boolean; currency: string; baseFee: number; inTrial: boolean; status: string } | null;
  statusAfterClose: string;
  /** Stripe's minimum charge in the invoice's currency, and what the close does with this total (§8.9). */
  minimumCharge: number;
  settlement: Settlement;
};

export type ClosedCycle = { invoiceId: string; periodStart: string; periodEnd: string; total: number; nextInvoiceId: string | null };

/**
 * The office object's core (docs/architecture.md): its binding to one office, the operation
 * ledger, the audited single-writer write, billing reads, the Stripe outbox and its alarm, and the
 * audit chain's RPC. The Stripe-facing operations extend it (office-stripe.ts), the billing
 * operations extend those (office-billing.ts, the class bound in wrangler.toml).
 */
export abstract class OfficeCore extends SerializedObject {
  #chain: ChainWriter | undefined;
  #outbox: StripeOutbox | undefined;
  /** Set when a write's batch found clinical events of this office not yet handed to the queue. */
  #eventsWaiting = false;
  protected readonly idempotency: IdempotencyStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.idempotency = new IdempotencyStore(ctx.storage);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS office_meta (id INTEGER PRIMARY KEY CHECK (id = 1), office_id TEXT NOT NULL, operations INTEGER NOT NULL DEFAULT 0, last_operation TEXT, last_operation_at INTEGER)",
    );
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS patient_key_state (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
  }

  /** Binds this object to its office on first use; a mismatch means a routing bug and is refused. */
  protected before(officeId: string): void {
    const row = this.ctx.storage.sql.exec<{ office_id: string }>("SELECT office_id FROM office_meta WHERE id = 1").toArray()[0];
    if (!row) {
      this.ctx.storage.sql.exec("INSERT INTO office_meta (id, office_id) VALUES (1, ?)", officeId);
    } else if (row.office_id !== officeId) {
      throw new ApiError("CONFLICT", "This office object is bound to a different office.");
    }
    this.#chain ??= new ChainWriter(this.ctx.storage, officeId, () => auditKeyring(loadConfig(this.env)));
  }

  protected override after(operation: string): void {
    this.ctx.storage.sql.exec(
      "UPDATE office_meta SET operations = operations + 1, last_operation = ?, last_operation_at = ? WHERE id = 1",
      operation,
      clock.now(),
    );
  }

  protected get chain(): ChainWriter {
    return this.#chain!;
  }

  /**
   * One database round trip: `statements` and the operation's audit entries in one batch (one
   * transaction), then `trailingReads` (see ChainWriter.write).
   */
  protected async write<R extends unknown[]>(
    officeId: string,
    statements: () => readonly BatchItem<"sqlite">[],
    audit: AuditInput[],
    conditional?: { auditIf: SQL; recorded: (results: R) => boolean },
    trailingReads?: () => readonly BatchItem<"sqlite">[],
  ): Promise<R> {
    const probe = this.clinicalProbe(officeId);
    if (!probe) return this.chain.write<R>(this.db, audit.map((a) => ({ ...a, officeId })), { statements, conditional, trailingReads });
    const results = await this.chain.write<unknown[]>(
      this.db,
      audit.map((a) => ({ ...a, officeId })),
      {
        statements,
        conditional: conditional && { auditIf: conditional.auditIf, recorded: (r) => conditional.recorded(r.slice(0, -1) as R) },
        trailingReads: () => [...(trailingReads?.() ?? []), probe()],
      },
    );
    return this.probed(results) as R;
  }

  /**
   * With a CLINICAL_WEBHOOK_URL, every write batch ends with one more read: does this office have
   * clinical events not yet handed to the queue (the database's triggers write them in the same
   * batch)? No extra round trip; `settled` hands them only when there are.
   */
  private clinicalProbe(officeId: string) {
    if (!clinicalTarget(loadConfig(this.env))) return null;
    return () => this.db.all(sql`SELECT 1 AS waiting FROM clinical_events WHERE office_id = ${officeId} AND status = 'pending' AND queued_at IS NULL LIMIT 1`);
  }

  /** Notes the probe's answer (the batch's last result) and returns the other results. */
  private probed(results: unknown[]): unknown[] {
    if ((results.at(-1) as unknown[]).length > 0) this.#eventsWaiting = true;
    return results.slice(0, -1);
  }

  /**
   * After an operation whose batch recorded clinical events, the office's new events (docs/clinical-events.md; the
   * database's triggers recorded them in the operation's own batch) are handed to the delivery
   * queue, in sequence order, by this object — the office's single writer — before its next
   * operation runs. Nothing is handed when no CLINICAL_WEBHOOK_URL is set (they stay stored). A
   * failure here does not undo the operation: the hourly sweep hands what is left.
   */
  protected override async settled(officeId: string): Promise<void> {
    if (!this.#eventsWaiting) return;
    this.#eventsWaiting = false;
    try {
      await dispatchClinicalEvents(this.db, this.env.CLINICAL_EVENTS_QUEUE, officeId);
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "clinical events not handed to the queue; the sweep will", officeId, error: err instanceof Error ? err.name : "error" }));
    }
  }

  /** Records a refused operation on the chain, then refuses it. */
  protected async refuse(officeId: string, actor: Actor, action: string, targetIds: string[], error: ApiError): Promise<never> {
    await this.chain.append(this.db, [{ ...actor, action, outcome: "failed", officeId, targetIds, details: { code: error.code, reason: error.message } }]);
    throw error;
  }

  /**
   * A billing read (the office, usage, invoices, an invoice), made together with the audit entry recording
   * it, in one round trip. The entry is written only if the office exists.
   */
  async read(officeId: string, read: OfficeRead, actor: Actor): Promise<OfficeResult<ReadResult>> {
    return this.exclusive(officeId, readActions[read.kind], async () => {
      const queries = readQueries(this.db, officeId, read);
      const results = await this.write<unknown[]>(
        officeId,
        () => queries,
        [{ ...actor, action: readActions[read.kind], outcome: "allowed", officeId, targetIds: read.kind === "invoice" ? [read.invoiceId] : [officeId] }],
        { auditIf: sql`EXISTS (SELECT 1 FROM ${offices} WHERE ${offices.id} = ${officeId})`, recorded: (r) => (r[0] as unknown[]).length > 0 },
      );
      // The audit insert follows the queries: only their results are read.
      const [officeRows, invoiceRows, lineRows, refundRows, creditNoteRows] = results.slice(0, queries.length) as [(typeof offices.$inferSelect)[], ReadResult["invoices"], ReadResult["lines"]?, ReadResult["refunds"]?, ReadResult["creditNotes"]?];
      const office = officeRows[0] ?? null;
      if (!office) throw new ApiError("NOT_FOUND", "No such office.");
      if (read.kind === "office") return { office, invoices: [], lines: [], refunds: [], discount: (results[1] as OfficeDiscountRow[])[0] ?? null };
      return { office, invoices: invoiceRows, lines: lineRows ?? [], refunds: refundRows ?? [], ...(creditNoteRows ? { creditNotes: creditNoteRows } : {}) };
    });
  }

  /** The office's Stripe outbox (created once the object knows its office). */
  protected outbox(officeId: string): StripeOutbox {
    this.#outbox ??= new StripeOutbox({
      officeId,
      db: this.db,
      config: loadConfig(this.env),
      env: this.env,
      storage: this.ctx.storage,
      // Every outbox commit carries the Stripe request-log rows kept since the last one (the calls
      // that led to this change), first in its batch: no round trip of their own.
      commit: async (action, statements, audit, trailingReads, conditional) =>
        this.exclusive(officeId, action, async () => {
          const log = this.#outbox!.requestLog;
          let taken: string[] = [];
          const withLog = () => {
            const kept = log.take();
            taken = kept.ids;
            return [...kept.statements, ...statements()];
          };
          let results: unknown[];
          if (audit.length === 0) {
            const probe = this.clinicalProbe(officeId);
            results = (await this.db.batch([...withLog(), ...(trailingReads?.() ?? []), ...(probe ? [probe()] : [])] as unknown as [BatchItem<"sqlite">])) as unknown[];
            if (probe) results = this.probed(results);
          } else {
            results = await this.write<unknown[]>(officeId, withLog, audit.map((a) => ({ ...a, officeId })), conditional, trailingReads);
          }
          log.forget(taken);
          return results;
        }).then(unwrap),
    });
    return this.#outbox;
  }

  /** After an operation that may have finalized an invoice, the outbox's alarm is armed to push it. */
  protected async thenSync<T>(officeId: string, result: Promise<OfficeResult<T>>): Promise<OfficeResult<T>> {
    const r = await result;
    if (r.ok) {
      try {
        await this.outbox(officeId).schedule();
      } catch (err) {
        // The hourly sweep re-arms it; the operation itself succeeded.
        console.error(JSON.stringify({ level: "error", msg: "could not arm the stripe outbox", officeId, error: err instanceof Error ? err.name : "error" }));
      }
    }
    return r;
  }

  /** The alarm runs the Stripe outbox; it re-arms itself for the next retry. */
  override async alarm(): Promise<void> {
    const row = this.ctx.storage.sql.exec<{ office_id: string }>("SELECT office_id FROM office_meta WHERE id = 1").toArray()[0];
    if (!row) return;
    try {
      this.before(row.office_id);
      await this.outbox(row.office_id).drain();
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "stripe outbox run failed; retrying in a minute", officeId: row.office_id, error: err instanceof Error ? err.name : "error" }));
      await this.ctx.storage.setAlarm(clock.now() + 60_000);
    }
  }

  /** Appends entries to this office's audit chain (one database round trip). */
  async audit(officeId: string, entries: AuditInput[]): Promise<OfficeResult<{ seq: number }>> {
    return this.exclusive(officeId, "audit", async () => {
      const head = await this.chain.append(this.db, entries.map((e) => ({ ...e, officeId })));
      return { seq: head.seq };
    });
  }

  /** This office's audit chain as its writer recorded it (every segment and its head): the anchor for verification. */
  async auditAnchor(officeId: string): Promise<OfficeResult<ChainAnchor>> {
    try {
      this.before(officeId);
      return ok(this.chain.anchor());
    } catch (err) {
      return failure(err);
    }
  }

  /** Logs (and returns) this office chain's MAC'd checkpoint: head, entries, time. */
  async auditCheckpoint(officeId: string): Promise<OfficeResult<AuditCheckpoint | null>> {
    return this.exclusive(officeId, "audit.checkpoint", () => this.chain.checkpoint());
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
