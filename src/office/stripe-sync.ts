import { startOfLocalDay } from "../billing/calendar";
import { asc, eq, sql, type SQL } from "drizzle-orm";
import { ZodError } from "zod";
import type { BatchItem } from "drizzle-orm/batch";
import { stripeRateLimit, type Config } from "../config";
import type { Database } from "../db/client";
import { invoiceLines, invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { patients } from "../db/patients";
import { refunds } from "../db/refunds";
import { planVersions } from "../db/plans";
import { webhookEvents } from "../db/webhook-events";
import { decide, decideFromStripe, eventStatus, suspensionAt, type InvoiceStatus } from "../billing/payments";
import type { StripeEvent } from "../stripe/webhooks";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { dataKeyring, encryptedColumns, indexIn, openReference, sealReference } from "../security/data-keys";
import { lookupIndexes } from "../security/crypto";
import { backoffDelay, paymentIntentOfCharge, StripeCallError, stripeGateway, type InvoiceForStripe, type StripeGateway, type StripeInvoiceState } from "../stripe/gateway";
import { stripeSlot } from "../stripe/rate-limiter";
import type { AuditInput } from "./chain-writer";
import * as clock from "../clock";

type OfficeRow = typeof offices.$inferSelect;
type InvoiceRow = typeof invoices.$inferSelect;
type LineRow = typeof invoiceLines.$inferSelect;
type RefundRow = typeof refunds.$inferSelect;

const [customerCol, invoiceCol, refundCol] = encryptedColumns;

/** The outbox's actor in the audit trail. */
export const OUTBOX_ACTOR = { actorSub: "system:stripe-outbox", actorRole: "system" } as const;

/** Outbox retries: 30 s, 1 min, 2 min, … capped at one hour, with jitter; a Stripe outage of hours resumes by itself. */
export const OUTBOX_BASE_MS = 30_000;
export const OUTBOX_CAP_MS = 3_600_000;
/** How long a run's lease on the office's Stripe work holds if its holder dies (renewed per item). */
const LEASE_MS = 5 * 60_000;
/** A pending refund is retried for at most this long (Stripe forgets idempotency keys after 24 h). */
export const REFUND_RETRY_WINDOW_MS = 23 * 3_600_000;

/**
 * The Stripe work of an office, as the database states it: open invoices not yet finalized on
 * Stripe (the push), voided invoices whose Stripe copy is still live (the void), pending refunds.
 * Deriving the work from the billing data means nothing that was committed can be lost between
 * the commit and the outbox; the object's storage only keeps each item's retry schedule.
 */
export function workReads(db: Database, officeId: string) {
  const pushable = sql`${invoices.officeId} = ${officeId} AND ${invoices.total} > 0 AND (
    (${invoices.status} = 'open' AND ${invoices.stripeState} IN ('none','draft_created'))
    OR (${invoices.status} = 'void' AND ${invoices.stripeState} IN ('draft_created','finalized')))`;
  return [
    db.select().from(offices).where(eq(offices.id, officeId)),
    db.select().from(invoices).where(pushable).orderBy(asc(invoices.createdAt), asc(invoices.id)),
    db
      .select()
      .from(invoiceLines)
      .where(sql`${invoiceLines.invoiceId} IN (SELECT id FROM ${invoices} WHERE ${pushable} AND ${invoices.status} = 'open')`)
      .orderBy(asc(invoiceLines.invoiceId), asc(invoiceLines.position), asc(invoiceLines.rankFrom)),
    db.select().from(refunds).where(sql`${refunds.officeId} = ${officeId} AND ${refunds.status} = 'pending'`).orderBy(asc(refunds.createdAt)),
    db.select({ patientKey: patients.patientKey }).from(patients).where(eq(patients.officeId, officeId)),
    db
      .select()
      .from(webhookEvents)
      .where(sql`${webhookEvents.officeId} = ${officeId} AND ${webhookEvents.status} = 'received'`)
      .orderBy(asc(webhookEvents.stripeCreatedAt), asc(webhookEvents.receivedAt))
      .limit(200),
    db.select({ graceDays: planVersions.graceDays }).from(planVersions).where(sql`${planVersions.id} = (SELECT plan_version_id FROM ${offices} WHERE id = ${officeId})`),
  ] as const;
}

type EventRow = typeof webhookEvents.$inferSelect;

export type Work = { office: OfficeRow; invoices: InvoiceRow[]; lines: LineRow[]; refunds: RefundRow[]; patientKeys: string[]; events: EventRow[]; graceDays: number };

/** The webhook processor's actor in the audit trail. */
export const WEBHOOK_ACTOR = { actorSub: "system:stripe-webhooks", actorRole: "system" } as const;

type RetryRow = { item: string; attempts: number; next_at: number; last_error: string | null };

export type SyncReport = { pushed: string[]; voided: string[]; refunded: string[]; failed: string[]; retrying: string[]; events: string[]; changed: { invoiceId: string; from: string; to: string; source: string }[] };

export const emptyReport = (): SyncReport => ({ pushed: [], voided: [], refunded: [], failed: [], retrying: [], events: [], changed: [] });

/** What the office object lends the outbox: its identity, services and the audited, serialized write. */
export interface OutboxHost {
  readonly officeId: string;
  readonly db: Database;
  readonly config: Config;
  readonly env: Env;
  readonly storage: DurableObjectStorage;
  /** One batch with its audit entries, run in the object's exclusive queue (one writer). */
  commit(
    action: string,
    statements: () => readonly BatchItem<"sqlite">[],
    audit: Omit<AuditInput, "officeId">[],
    trailingReads?: () => readonly BatchItem<"sqlite">[],
    conditional?: { auditIf: SQL; recorded: (results: unknown[]) => boolean },
  ): Promise<unknown[]>;
}

/**
 * The office's Stripe outbox. Stripe is only ever called here, outside the object's exclusive
 * queue (a slow Stripe never holds up activations), one item at a time (`#lock`), and each
 * outcome is written back through the host's audited write. Retryable failures are rescheduled
 * with backoff on the object's alarm; permanent ones are recorded on the invoice or refund.
 */
export class StripeOutbox {
  #lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: OutboxHost) {
    host.storage.sql.exec("CREATE TABLE IF NOT EXISTS stripe_retry (item TEXT PRIMARY KEY, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL, last_error TEXT)");
    host.storage.sql.exec("CREATE TABLE IF NOT EXISTS stripe_verified (invoice_id TEXT PRIMARY KEY, updated_at INTEGER NOT NULL)");
    host.storage.sql.exec("CREATE TABLE IF NOT EXISTS stripe_lease (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, until INTEGER NOT NULL)");
    // A new instance of the object means the previous one is gone: its lease goes with it.
    host.storage.sql.exec("DELETE FROM stripe_lease");
  }

  private renewLease() {
    this.host.storage.sql.exec("UPDATE stripe_lease SET until = ? WHERE holder = ?", Date.now() + LEASE_MS, this.#holder);
  }

  /** The host's audited, serialized write (for the object's own Stripe operations). */
  get commit(): OutboxHost["commit"] {
    return this.host.commit;
  }

  readonly #holder = crypto.randomUUID();

  /**
   * Takes the office's Stripe lease in the object's own storage (a synchronous write), so two
   * runs never overlap, even from two instances of the object (a restarted object while its old
   * instance finishes). A lease outlives a crashed holder by at most `LEASE_MS`.
   */
  private async lease(): Promise<void> {
    for (;;) {
      const now = Date.now();
      const taken = this.host.storage.sql
        .exec<{ holder: string }>(
          "INSERT INTO stripe_lease (id, holder, until) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, until = excluded.until WHERE stripe_lease.until < ? RETURNING holder",
          this.#holder,
          now + LEASE_MS,
          now,
        )
        .toArray();
      if (taken.length > 0) return;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private release() {
    this.host.storage.sql.exec("DELETE FROM stripe_lease WHERE holder = ?", this.#holder);
  }

  /** Runs `fn` after any Stripe work already under way for this office. */
  serialized<T>(fn: () => Promise<T>): Promise<T> {
    const leased = async () => {
      await this.lease();
      try {
        return await fn();
      } finally {
        this.release();
      }
    };
    const run = this.#lock.then(leased, leased);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /** Asks the alarm to run the outbox now (unless it is already due sooner). */
  async schedule(at = Date.now()): Promise<void> {
    const current = await this.host.storage.getAlarm();
    if (current === null || current > at) await this.host.storage.setAlarm(at);
  }

  retries(): RetryRow[] {
    return this.host.storage.sql.exec<RetryRow>("SELECT item, attempts, next_at, last_error FROM stripe_retry ORDER BY next_at").toArray();
  }

  private retryOf(item: string): RetryRow | undefined {
    return this.host.storage.sql.exec<RetryRow>("SELECT item, attempts, next_at, last_error FROM stripe_retry WHERE item = ?", item).toArray()[0];
  }

  private clearRetry(item: string) {
    this.host.storage.sql.exec("DELETE FROM stripe_retry WHERE item = ?", item);
  }

  private scheduleRetry(item: string, error: string): number {
    const attempts = (this.retryOf(item)?.attempts ?? 0) + 1;
    const nextAt = Date.now() + backoffDelay(attempts, this.host.config.STRIPE_OUTBOX_RETRY_MS ?? OUTBOX_BASE_MS, OUTBOX_CAP_MS);
    this.host.storage.sql.exec(
      "INSERT INTO stripe_retry (item, attempts, next_at, last_error) VALUES (?, ?, ?, ?) ON CONFLICT (item) DO UPDATE SET attempts = excluded.attempts, next_at = excluded.next_at, last_error = excluded.last_error",
      item,
      attempts,
      nextAt,
      error,
    );
    console.warn(JSON.stringify({ level: "warn", msg: "stripe work will be retried", officeId: this.host.officeId, item, attempts, error, nextAt }));
    return nextAt;
  }

  /** The office and its patient keys (for the guard), one round trip. */
  async readOffice(): Promise<Pick<Work, "office" | "patientKeys"> | null> {
    const db = this.host.db;
    const [officeRows, keyRows] = await db.batch([
      db.select().from(offices).where(eq(offices.id, this.host.officeId)),
      db.select({ patientKey: patients.patientKey }).from(patients).where(eq(patients.officeId, this.host.officeId)),
    ] as const);
    return officeRows[0] ? { office: officeRows[0], patientKeys: keyRows.map((r) => r.patientKey) } : null;
  }

  /** Reads this office's Stripe work (one round trip). */
  async readWork(): Promise<Work | null> {
    const [officeRows, invoiceRows, lineRows, refundRows, keyRows, eventRows, graceRows] = await this.host.db.batch(workReads(this.host.db, this.host.officeId));
    const office = officeRows[0];
    if (!office) return null;
    return {
      office,
      invoices: invoiceRows,
      lines: lineRows,
      refunds: refundRows,
      patientKeys: keyRows.map((r) => r.patientKey),
      events: eventRows,
      graceDays: graceRows[0]?.graceDays ?? 14,
    };
  }

  /** A gateway for this office: the guard knows its billing e-mail, the period's dates and its patient keys. */
  gateway(work: Pick<Work, "office" | "patientKeys">, periodDates: string[], requestId: string, allowedValues?: Record<string, string>): StripeGateway {
    const { config, env, officeId } = this.host;
    return stripeGateway({
      config,
      db: this.host.db,
      officeId,
      requestId,
      guard: { billingEmail: work.office.billingEmail, periodDates, patientKeys: work.patientKeys, ...(allowedValues ? { allowedValues } : {}) },
      acquire: stripeSlot(env, stripeRateLimit(config)),
      onBlocked: async (d) => {
        await this.host.commit("stripe.blocked", () => [], [
          { ...OUTBOX_ACTOR, requestId, action: "phi_egress_blocked", outcome: "failed", targetIds: [officeId], details: { operation: d.operation, kinds: d.kinds, fields: d.fields } },
        ]);
      },
    });
  }

  /** The office's Stripe customer id, created (and stored encrypted) on first need. */
  async customerId(work: Pick<Work, "office" | "patientKeys">, requestId: string): Promise<string> {
    const { office } = work;
    const ring = await dataKeyring(this.host.config);
    if (office.stripeCustomerRef) return openReference(ring, customerCol, office.id, office.stripeCustomerRef);
    const customer = await this.gateway(work, [], requestId).ensureCustomer({ id: office.id, legalName: office.legalName, billingEmail: office.billingEmail });
    const sealed = await sealReference(ring, customerCol, office.id, customer.id);
    const rows = (await this.host.commit(
      "stripe.customer",
      () => [this.host.db.run(sql`UPDATE ${offices} SET stripe_customer_ref = ${sealed.ref}, stripe_customer_index = ${sealed.index} WHERE id = ${office.id} AND stripe_customer_ref IS NULL`)],
      [{ ...OUTBOX_ACTOR, requestId, action: "stripe.customer_created", outcome: "succeeded", targetIds: [office.id] }],
      () => [this.host.db.select({ ref: offices.stripeCustomerRef }).from(offices).where(eq(offices.id, office.id))],
    )) as unknown[];
    const stored = (rows.at(-1) as { ref: string | null }[])[0]?.ref;
    office.stripeCustomerRef = stored ?? sealed.ref;
    return stored ? openReference(ring, customerCol, office.id, stored) : customer.id;
  }

  /**
   * Runs every due item of the office's Stripe work, then re-arms the alarm for the earliest retry.
   * Safe to run at any time and any number of times: each step is keyed and recorded.
   */
  drain(): Promise<SyncReport> {
    return this.serialized(async () => {
      const report = emptyReport();
      if (!this.host.config.STRIPE_SECRET_KEY) {
        console.warn(JSON.stringify({ level: "warn", msg: "stripe outbox idle: STRIPE_SECRET_KEY is not set", officeId: this.host.officeId }));
        return report;
      }
      const work = await this.readWork();
      if (!work) return report;
      const now = clock.now();
      const live = new Set<string>();
      const due = (item: string) => {
        live.add(item);
        const retry = this.retryOf(item);
        return !retry || retry.next_at <= now;
      };
      // Stripe's news first (webhooks, oldest first), then our own work, which may depend on it.
      for (const event of work.events) {
        const item = `event:${event.id}`;
        if (!due(item)) continue;
        await this.attempt(item, report, event.id, () => this.processEvent(work, event, report).then(() => void report.events.push(event.id)));
      }
      if (work.events.length > 0) {
        const fresh = await this.readWork();
        if (fresh) Object.assign(work, { ...fresh, events: [] });
      }
      await this.dunning(work);
      for (const invoice of work.invoices) {
        const item = invoice.status === "void" ? `void:${invoice.id}` : `push:${invoice.id}`;
        if (!due(item)) continue;
        await this.attempt(item, report, invoice.id, () =>
          invoice.status === "void"
            ? this.voidOne(work, invoice).then((done) => void (done && report.voided.push(invoice.id)))
            : this.pushOne(work, invoice).then(() => void report.pushed.push(invoice.id)),
        );
      }
      for (const refund of work.refunds) {
        const item = `refund:${refund.id}`;
        if (!due(item)) continue;
        await this.attempt(item, report, refund.id, () => this.refundOne(work, refund).then(() => void report.refunded.push(refund.id)));
      }
      // Retry rows of work that no longer exists (done elsewhere) are dropped; the rest re-arm the alarm.
      for (const r of this.retries()) if (!live.has(r.item)) this.clearRetry(r.item);
      const next = this.retries()[0];
      if (next) await this.schedule(next.next_at);
      // A past-due office is suspended when its grace period ends: the alarm is there on time.
      if (work.office.status === "past_due" && work.office.pastDueSince !== null) await this.schedule(suspensionAt(work.office.pastDueSince, work.graceDays));
      return report;
    });
  }

  /** Runs one item: done, rescheduled (retryable), or recorded as failed for good. */
  async attempt(item: string, report: SyncReport, id: string, fn: () => Promise<void>): Promise<"done" | "retrying" | "failed"> {
    this.renewLease();
    try {
      await fn();
      this.clearRetry(item);
      return "done";
    } catch (err) {
      const code =
        err instanceof StripeCallError
          ? err.code
          : err instanceof ApiError && err.code === "UNPROCESSABLE"
            ? "phi_egress_blocked"
            : err instanceof ZodError
              ? "payload_invalid" // outside what may be sent (e.g. more lines than one call takes): needs a person
              : null;
      // Retryable Stripe failures, and anything that is not Stripe's answer (the database, a bug): later.
      if (code === null || (err instanceof StripeCallError && err.retryable)) {
        if (code === null) console.error(JSON.stringify({ level: "error", msg: "stripe work interrupted", officeId: this.host.officeId, item, error: err instanceof Error ? err.name : "error" }));
        this.scheduleRetry(item, code ?? (err instanceof Error ? err.name : "error"));
        report.retrying.push(id);
        return "retrying";
      }
      await this.fail(item, id, code);
      this.clearRetry(item);
      report.failed.push(id);
      return "failed";
    }
  }

  /** Stripe refused the work for good: the invoice or refund records why; billing staff see it. */
  private async fail(item: string, id: string, code: string) {
    const db = this.host.db;
    const now = clock.now();
    const [kind] = item.split(":");
    console.error(JSON.stringify({ level: "error", msg: "stripe work failed permanently", officeId: this.host.officeId, item, code }));
    await this.host.commit(
      "stripe.failed",
      () =>
        kind === "refund"
          ? [db.run(sql`UPDATE ${refunds} SET status = 'failed', error_code = ${code}, updated_at = ${now} WHERE id = ${id} AND status = 'pending'`)]
          : kind === "event"
            ? [db.run(sql`UPDATE ${webhookEvents} SET status = 'failed', attempts = attempts + 1, error = ${code}, processed_at = ${now} WHERE id = ${id}`)]
            : [db.run(sql`UPDATE ${invoices} SET stripe_state = 'failed', stripe_error = ${code}, updated_at = ${now} WHERE id = ${id}`)],
      [
        {
          ...OUTBOX_ACTOR,
          requestId: `outbox:${item}`,
          action: kind === "refund" ? "refund.failed" : kind === "event" ? "webhook.failed" : kind === "void" ? "stripe.void_failed" : "stripe.push_failed",
          outcome: "failed",
          targetIds: [id],
          details: { code },
        },
      ],
    );
  }

  /**
   * The internal invoice a Stripe invoice stands for, found only through the keyed index of the
   * Stripe id we recorded when we pushed it (so never a draft, never an invoice Stripe was not
   * sent). Our references in the event's metadata are hints: when they name another invoice or
   * another office than the stored id does, the event is a `mismatch` and is not applied.
   */
  private async bindInvoice(stripeInvoiceId: string | null, hints: { invoiceRef?: unknown[]; officeRef?: unknown }): Promise<{ invoice: InvoiceRow } | { mismatch: string } | null> {
    if (hints.officeRef !== undefined && hints.officeRef !== this.host.officeId) return { mismatch: "office_ref" };
    if (!stripeInvoiceId) return null;
    const db = this.host.db;
    const ring = await dataKeyring(this.host.config);
    const indexes = await lookupIndexes(ring, "stripe_invoice", stripeInvoiceId);
    const [row] = await db.select().from(invoices).where(sql`${indexIn(invoices.stripeInvoiceIndex, indexes)} AND ${invoices.officeId} = ${this.host.officeId}`);
    if (!row) return null;
    if ((hints.invoiceRef ?? []).some((ref) => ref !== undefined && ref !== row.id)) return { mismatch: "invoice_ref" };
    return { invoice: row };
  }

  /** A signed event whose metadata disagrees with what our stored ids name: recorded `rejected`, audited, logged at error level. */
  private rejectEvent(event: EventRow, field: string) {
    console.error(JSON.stringify({ level: "error", msg: "stripe webhook refused: metadata disagrees with the stored binding", officeId: this.host.officeId, eventId: event.id, type: event.type, field }));
    return this.finishEvent(event, "rejected", { error: "binding_mismatch", reason: "binding_mismatch", field });
  }

  /** Marks a webhook event done, with its audit entry, and any invoice change, in one batch. */
  private async finishEvent(event: EventRow, outcome: "processed" | "ignored" | "rejected", details: Record<string, unknown>, statements: ReturnType<Database["run"]>[] = [], targetIds: string[] = []) {
    const db = this.host.db;
    const now = clock.now();
    await this.host.commit(
      "webhook.process",
      () => [
        ...statements,
        db.run(sql`UPDATE ${webhookEvents} SET status = ${outcome}, attempts = attempts + 1, processed_at = ${now}, error = ${typeof details.error === "string" ? details.error : null} WHERE id = ${event.id}`),
      ],
      [{ ...WEBHOOK_ACTOR, requestId: `webhook:${event.id}`, action: `webhook.${event.type}`, outcome: outcome === "processed" ? "succeeded" : outcome, targetIds: [event.id, ...targetIds], details }],
    );
  }

  /** Moves an invoice to a status (compare-and-set on the statuses it may come from). */
  private moveInvoice(invoice: InvoiceRow, to: InvoiceStatus, stripe: { amountPaid?: number; paidAt?: number | null }, at: number): ReturnType<Database["run"]>[] {
    const db = this.host.db;
    const now = clock.now();
    switch (to) {
      case "paid":
        return [
          db.run(sql`UPDATE ${invoices} SET status = 'paid', amount_paid = MIN(total, MAX(amount_paid, ${stripe.amountPaid ?? invoice.total})), paid_at = ${stripe.paidAt ?? at},
            payment_failed_at = NULL, updated_at = ${now} WHERE id = ${invoice.id} AND status IN ('open','uncollectible')`),
        ];
      case "void":
        return [
          db.run(sql`UPDATE ${invoices} SET status = 'void', voided_at = ${at}, payment_failed_at = NULL,
            stripe_state = CASE WHEN stripe_state IN ('draft_created','finalized') THEN 'voided' ELSE stripe_state END, updated_at = ${now}
            WHERE id = ${invoice.id} AND status IN ('open','uncollectible')`),
        ];
      case "uncollectible":
        return [db.run(sql`UPDATE ${invoices} SET status = 'uncollectible', updated_at = ${now} WHERE id = ${invoice.id} AND status = 'open'`)];
      default:
        return [];
    }
  }

  /**
   * Applies one Stripe webhook event to this office (docs/payment-plan.md §9). Events come late,
   * twice and out of order: an invoice only moves forward, and when an event contradicts a final
   * state of ours, Stripe's current state is read and applied instead of the event's.
   */
  private async processEvent(work: Work, event: EventRow, report: SyncReport): Promise<void> {
    const payload = event.payload as StripeEvent;
    const obj = payload.data.object;
    const at = payload.created * 1000;
    const db = this.host.db;
    const requestId = `webhook:${event.id}`;
    // Checked again here (the route checked it on receipt): a replayed event is bound the same way.
    const officeHint = (obj.metadata && typeof obj.metadata === "object" ? (obj.metadata as Record<string, unknown>) : {}).office_ref;
    if (officeHint !== undefined && officeHint !== this.host.officeId) return this.rejectEvent(event, "office_ref");
    if (event.type.startsWith("invoice.")) {
      const metadata = (obj.metadata && typeof obj.metadata === "object" ? obj.metadata : {}) as Record<string, unknown>;
      const bound = await this.bindInvoice(typeof obj.id === "string" ? obj.id : null, { invoiceRef: [metadata.invoice_ref], officeRef: metadata.office_ref });
      if (bound && "mismatch" in bound) return this.rejectEvent(event, bound.mismatch);
      if (!bound) return this.finishEvent(event, "ignored", { error: "invoice_unknown" });
      const { invoice } = bound;
      // Never pushed (a draft, a zero total): Stripe has no such invoice, so no event is about it.
      if (invoice.status === "draft" || !invoice.stripeInvoiceRef || invoice.stripeState === "none") return this.finishEvent(event, "ignored", { invoiceId: invoice.id, error: "invoice_not_pushed" }, [], [invoice.id]);
      const stripeRef = invoice.stripeInvoiceRef;
      const ours = invoice.status as InvoiceStatus;
      const reported = eventStatus(event.type);
      if (reported === null) {
        // A payment attempt failed or needs the customer's action: dunning, unless the invoice is settled.
        if (ours !== "open" && ours !== "uncollectible") return this.finishEvent(event, "processed", { invoiceId: invoice.id, stale: true, status: ours }, [], [invoice.id]);
        await this.finishEvent(event, "processed", { invoiceId: invoice.id, paymentFailed: true }, [
          db.run(sql`UPDATE ${invoices} SET payment_failed_at = MAX(COALESCE(payment_failed_at, 0), ${at}), updated_at = ${clock.now()} WHERE id = ${invoice.id} AND status IN ('open','uncollectible')`),
        ], [invoice.id]);
        await this.officeStatus(work, "past_due", requestId, { invoiceId: invoice.id, event: event.type });
        return;
      }
      let decision = decide(ours, reported);
      let source = "webhook";
      let stripe: { amountPaid?: number; paidAt?: number | null } = {
        amountPaid: typeof obj.amount_paid === "number" ? obj.amount_paid : undefined,
        paidAt: typeof (obj.status_transitions as { paid_at?: unknown } | undefined)?.paid_at === "number" ? ((obj.status_transitions as { paid_at: number }).paid_at * 1000) : null,
      };
      // In doubt — the event contradicts a final state of ours, or reports a payment outside
      // 0..total (ours) — Stripe's own object is read and decides, not the event.
      const reportedPaid = stripe.amountPaid;
      const doubtfulAmount = decision.kind === "apply" && decision.to === "paid" && !(reportedPaid !== undefined && Number.isSafeInteger(reportedPaid) && reportedPaid >= 0 && reportedPaid <= invoice.total);
      if (decision.kind === "conflict" || doubtfulAmount) {
        const ring = await dataKeyring(this.host.config);
        const current = await this.gateway(work, [], requestId).readInvoice(await openReference(ring, invoiceCol, invoice.id, stripeRef));
        decision = decideFromStripe(ours, current.status);
        source = "stripe_read";
        stripe = { amountPaid: current.amountPaid, paidAt: null };
        if (doubtfulAmount) console.error(JSON.stringify({ level: "error", msg: "stripe event reported a payment outside the invoice's total; Stripe's invoice read instead", officeId: this.host.officeId, eventId: event.id, invoiceId: invoice.id, total: invoice.total, reported: obj.amount_paid, stripe: current.amountPaid }));
        if (current.amountPaid > invoice.total) console.error(JSON.stringify({ level: "error", msg: "stripe invoice paid more than our total; recorded as our total", officeId: this.host.officeId, invoiceId: invoice.id, total: invoice.total, stripe: current.amountPaid }));
      }
      if (decision.kind !== "apply") {
        // finalized reported for an invoice whose push stopped after finalize: the push is complete.
        const statements = reported === "open" && ours === "open" ? [db.run(sql`UPDATE ${invoices} SET stripe_state = 'finalized', updated_at = ${clock.now()} WHERE id = ${invoice.id} AND stripe_state IN ('none','draft_created')`)] : [];
        return this.finishEvent(event, "processed", { invoiceId: invoice.id, status: ours, reported, changed: false, why: decision.kind === "none" ? decision.why : "conflict", source }, statements, [invoice.id]);
      }
      await this.finishEvent(event, "processed", { invoiceId: invoice.id, from: ours, to: decision.to, changed: true, source }, this.moveInvoice(invoice, decision.to, stripe, at), [invoice.id]);
      report.changed.push({ invoiceId: invoice.id, from: ours, to: decision.to, source });
      await this.officeStatus(work, "settled", requestId, { invoiceId: invoice.id, event: event.type });
      return;
    }
    if (event.type === "charge.refunded") {
      const refundsOf = (obj.refunds as { data?: { id?: unknown; metadata?: Record<string, unknown> }[] } | undefined)?.data ?? [];
      const chargeMetadata = (obj.metadata && typeof obj.metadata === "object" ? obj.metadata : {}) as Record<string, unknown>;
      // A charge does not name its invoice in this API version: the invoice whose payment is the
      // charge's payment intent, as Stripe lists it, is the one (read from Stripe, not the event's word).
      const paymentIntentId = paymentIntentOfCharge(obj);
      const stripeInvoiceId = paymentIntentId ? await this.gateway(work, [], requestId).invoiceOfPaymentIntent(paymentIntentId) : null;
      const hints = { invoiceRef: [chargeMetadata.invoice_ref, ...refundsOf.map((r) => r.metadata?.invoice_ref)], officeRef: chargeMetadata.office_ref };
      // The invoice through that Stripe invoice id (stored by us); else through a refund of ours
      // listed on the charge, when an event carries them (its Stripe id stored when we made it).
      // Metadata only has to agree.
      let bound = await this.bindInvoice(stripeInvoiceId, hints);
      if (!bound && !stripeInvoiceId) {
        const ring = await dataKeyring(this.host.config);
        const indexes = (await Promise.all(refundsOf.filter((r) => typeof r.id === "string").map((r) => lookupIndexes(ring, "stripe_refund", r.id as string)))).flat();
        const [row] = indexes.length === 0 ? [] : await db
          .select()
          .from(invoices)
          .where(sql`${invoices.officeId} = ${this.host.officeId} AND ${invoices.id} IN (SELECT invoice_id FROM ${refunds} WHERE office_id = ${this.host.officeId} AND stripe_refund_index IN (${sql.join(indexes.map((i) => sql`${i}`), sql`, `)}))`);
        if (row) bound = hints.invoiceRef.some((r) => r !== undefined && r !== row.id) ? { mismatch: "invoice_ref" } : { invoice: row };
      }
      if (bound && "mismatch" in bound) return this.rejectEvent(event, bound.mismatch);
      if (!bound) return this.finishEvent(event, "ignored", { error: "invoice_unknown" });
      const { invoice } = bound;
      if (!invoice.stripeInvoiceRef) return this.finishEvent(event, "ignored", { invoiceId: invoice.id, error: "invoice_not_pushed" }, [], [invoice.id]);
      let refunded = typeof obj.amount_refunded === "number" ? obj.amount_refunded : 0;
      // In doubt — not a whole amount, or more than was paid (ours, or the total while the payment's own event is still on its way) — the charge is read from Stripe.
      const ceiling = invoice.status === "paid" ? invoice.amountPaid : invoice.total;
      if (!(Number.isSafeInteger(refunded) && refunded >= 0 && refunded <= ceiling)) {
        const charge = typeof obj.id === "string" ? await this.gateway(work, [], requestId).readCharge(obj.id) : null;
        console.error(JSON.stringify({ level: "error", msg: "stripe event reported a refund above the amount paid; Stripe's charge read instead", officeId: this.host.officeId, eventId: event.id, invoiceId: invoice.id, amountPaid: invoice.amountPaid, reported: obj.amount_refunded, stripe: charge?.amountRefunded ?? null }));
        refunded = charge && Number.isSafeInteger(charge.amountRefunded) ? charge.amountRefunded : 0;
      }
      const statements: ReturnType<Database["run"]>[] = [];
      if (invoice.status !== "paid") {
        // The refund came before the payment's own event: Stripe's state of the invoice decides.
        if (!invoice.stripeInvoiceRef) return this.finishEvent(event, "ignored", { invoiceId: invoice.id, error: "invoice_not_paid" }, [], [invoice.id]);
        const ring = await dataKeyring(this.host.config);
        const current = await this.gateway(work, [], requestId).readInvoice(await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef));
        if (current.status !== "paid") return this.finishEvent(event, "ignored", { invoiceId: invoice.id, error: "invoice_not_paid" }, [], [invoice.id]);
        statements.push(...this.moveInvoice(invoice, "paid", { amountPaid: current.amountPaid }, at));
        report.changed.push({ invoiceId: invoice.id, from: invoice.status, to: "paid", source: "stripe_read" });
      }
      statements.push(
        db.run(sql`UPDATE ${invoices} SET amount_refunded = MIN(amount_paid, MAX(amount_refunded, ${refunded})), updated_at = ${clock.now()} WHERE id = ${invoice.id} AND status = 'paid'`),
      );
      await this.finishEvent(event, "processed", { invoiceId: invoice.id, amountRefunded: refunded }, statements, [invoice.id]);
      if (invoice.status !== "paid") await this.officeStatus(work, "settled", requestId, { invoiceId: invoice.id, event: event.type });
      return;
    }
    if (event.type === "charge.dispute.created" || event.type === "charge.dispute.closed") {
      // A dispute is for billing staff: recorded and logged; the money moves with Stripe's own events.
      const details = { amount: obj.amount, status: obj.status, reason: obj.reason, currency: obj.currency };
      if (event.type === "charge.dispute.created") console.error(JSON.stringify({ level: "error", msg: "payment disputed", officeId: this.host.officeId, eventId: event.id, status: obj.status }));
      return this.finishEvent(event, "processed", details);
    }
    if (event.type === "customer.updated") {
      const fields = Object.keys(((payload.data as { previous_attributes?: Record<string, unknown> }).previous_attributes ?? {}) as Record<string, unknown>);
      return this.finishEvent(event, "processed", { fields });
    }
    if (event.type === "customer.deleted") {
      const ring = await dataKeyring(this.host.config);
      const indexes = typeof obj.id === "string" ? await lookupIndexes(ring, "stripe_customer", obj.id) : [""];
      return this.finishEvent(event, "processed", { customerCleared: true }, [
        db.run(sql`UPDATE ${offices} SET stripe_customer_ref = NULL, stripe_customer_index = NULL, updated_at = ${clock.now()} WHERE id = ${this.host.officeId} AND ${indexIn("stripe_customer_index", indexes)}`),
      ]);
    }
    return this.finishEvent(event, "ignored", { error: "unhandled_type" });
  }

  /**
   * The office's dunning state after a payment event (docs/payment-plan.md §4): a failed payment
   * makes an active office `past_due`; once no invoice with a failed payment is left unpaid, a
   * `past_due` or `suspended` office is `active` again. Each change is audited.
   */
  private async officeStatus(work: Work, change: "past_due" | "settled", requestId: string, details: Record<string, unknown>) {
    const db = this.host.db;
    const now = clock.now();
    const id = this.host.officeId;
    const unpaid = sql`EXISTS (SELECT 1 FROM ${invoices} WHERE office_id = ${id} AND status IN ('open','uncollectible') AND payment_failed_at IS NOT NULL)`;
    const [from, to] = change === "past_due" ? (["active", "past_due"] as const) : ([null, "active"] as const);
    const update =
      change === "past_due"
        ? sql`UPDATE ${offices} SET status = 'past_due', past_due_since = COALESCE(past_due_since, ${now}), updated_at = ${now} WHERE id = ${id} AND status = 'active' AND ${unpaid}`
        : sql`UPDATE ${offices} SET status = 'active', past_due_since = NULL, updated_at = ${now} WHERE id = ${id} AND status IN ('past_due','suspended') AND NOT ${unpaid}`;
    const rows = await this.host.commit(
      "office.status",
      () => [db.run(update)],
      [{ ...WEBHOOK_ACTOR, requestId, action: "office.status_changed", outcome: "succeeded", targetIds: [id], details: { from: from ?? work.office.status, to, ...details } }],
      () => [db.select({ status: offices.status, pastDueSince: offices.pastDueSince, updatedAt: offices.updatedAt }).from(offices).where(eq(offices.id, id))],
      { auditIf: sql`EXISTS (SELECT 1 FROM ${offices} WHERE id = ${id} AND status = ${to} AND updated_at = ${now})`, recorded: (r) => (r.at(-1) as { updatedAt: number }[])[0]?.updatedAt === now },
    );
    const row = (rows.at(-1) as { status: OfficeRow["status"]; pastDueSince: number | null }[])[0];
    if (row) Object.assign(work.office, row);
  }

  /** A past-due office whose grace period has run out is suspended (checked at every run of the outbox). */
  private async dunning(work: Work) {
    const { office } = work;
    if (office.status !== "past_due" || office.pastDueSince === null) return;
    const deadline = suspensionAt(office.pastDueSince, work.graceDays);
    if (deadline > clock.now()) return;
    const db = this.host.db;
    const now = clock.now();
    const id = this.host.officeId;
    await this.host.commit(
      "office.suspend",
      () => [db.run(sql`UPDATE ${offices} SET status = 'suspended', updated_at = ${now} WHERE id = ${id} AND status = 'past_due' AND past_due_since = ${office.pastDueSince}`)],
      [{ ...WEBHOOK_ACTOR, requestId: `dunning:${id}`, action: "office.status_changed", outcome: "succeeded", targetIds: [id], details: { from: "past_due", to: "suspended", graceDays: work.graceDays, pastDueSince: new Date(office.pastDueSince).toISOString() } }],
      () => [db.select({ updatedAt: offices.updatedAt }).from(offices).where(eq(offices.id, id))],
      { auditIf: sql`EXISTS (SELECT 1 FROM ${offices} WHERE id = ${id} AND status = 'suspended' AND updated_at = ${now})`, recorded: (r) => (r.at(-1) as { updatedAt: number }[])[0]?.updatedAt === now },
    );
    office.status = "suspended";
  }

  /**
   * Reconciliation: every pushed invoice of this office (open, paid, void, uncollectible) is
   * compared with Stripe's own object, and ours is repaired to Stripe's, audited
   * (`stripe.reconciled`). Stripe ahead of ours (a missed webhook) moves ours forward; ours
   * contradicting Stripe (a status or paid amount no Stripe object supports: an event that should
   * never have been applied) is set back to Stripe's state and logged at error level. Open and
   * uncollectible invoices, and pushes never confirmed, are compared at every run; a settled one
   * (paid, void) each time it changed since it was last found to agree with Stripe (the object's
   * storage remembers that). Invoices the outbox still owes Stripe (a void not yet sent) and
   * failed pushes are left to the outbox and billing staff.
   */
  reconcile(): Promise<SyncReport & { checked: number }> {
    return this.serialized(async () => {
      const report = emptyReport();
      let checked = 0;
      if (!this.host.config.STRIPE_SECRET_KEY) return { ...report, checked };
      const work = await this.readWork();
      if (!work) return { ...report, checked };
      const db = this.host.db;
      const storage = this.host.storage.sql;
      const pushed = await db
        .select()
        .from(invoices)
        .where(
          sql`${invoices.officeId} = ${this.host.officeId} AND ${invoices.stripeInvoiceRef} IS NOT NULL AND ${invoices.stripeState} <> 'failed'
            AND NOT (${invoices.status} = 'void' AND ${invoices.stripeState} IN ('draft_created','finalized'))`,
        );
      const verified = new Map(storage.exec<{ invoice_id: string; updated_at: number }>("SELECT invoice_id, updated_at FROM stripe_verified").toArray().map((r) => [r.invoice_id, r.updated_at]));
      const candidates = pushed.filter((i) => i.status === "open" || i.status === "uncollectible" || i.stripeState === "draft_created" || verified.get(i.id) !== i.updatedAt);
      const ring = await dataKeyring(this.host.config);
      for (const invoice of candidates) {
        checked++;
        const requestId = `reconcile:${invoice.id}`;
        try {
          const current = await this.gateway(work, [], requestId).readInvoice(await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef!));
          const ours = invoice.status as InvoiceStatus;
          const repair = reconcileInvoice(invoice, current);
          if (!repair) {
            if (ours === "paid" || ours === "void") this.markVerified(invoice.id, invoice.updatedAt);
            continue;
          }
          const now = clock.now();
          const statements =
            repair.kind === "forward"
              ? this.moveInvoice(invoice, repair.to, { amountPaid: current.amountPaid }, now)
              : repair.kind === "contradiction"
                ? [
                    db.run(sql`UPDATE ${invoices} SET status = ${repair.to}, amount_paid = ${repair.amountPaid}, amount_refunded = MIN(amount_refunded, ${repair.amountPaid}),
                      paid_at = CASE WHEN ${repair.to} = 'paid' THEN COALESCE(paid_at, ${now}) ELSE NULL END,
                      voided_at = CASE WHEN ${repair.to} = 'void' THEN COALESCE(voided_at, ${now}) ELSE NULL END,
                      stripe_state = ${repair.stripeState}, updated_at = ${now}
                      WHERE id = ${invoice.id} AND status = ${ours} AND updated_at = ${invoice.updatedAt}`),
                  ]
                : [];
          if (repair.finalizedOnStripe) statements.push(db.run(sql`UPDATE ${invoices} SET stripe_state = 'finalized', updated_at = ${now} WHERE id = ${invoice.id} AND stripe_state = 'draft_created'`));
          if (repair.kind === "contradiction") {
            console.error(JSON.stringify({ level: "error", msg: "invoice contradicted Stripe; repaired to Stripe's state", officeId: this.host.officeId, invoiceId: invoice.id, from: ours, to: repair.to, amountPaid: invoice.amountPaid, stripeAmountPaid: current.amountPaid, stripeStatus: current.status }));
          }
          // A repair is a compare-and-set on the version read: audited only if it was the one written.
          const contradiction = repair.kind === "contradiction" ? repair : null;
          const results = await this.host.commit(
            "reconcile",
            () => statements,
            [
              {
                ...OUTBOX_ACTOR,
                requestId,
                action: "stripe.reconciled",
                outcome: "succeeded",
                targetIds: [invoice.id],
                details: {
                  from: ours,
                  to: repair.kind === "stripe_state" ? ours : repair.to,
                  stripeStatus: current.status,
                  stripeStateRepaired: repair.finalizedOnStripe,
                  ...(contradiction ? { contradiction: true, amountPaidFrom: invoice.amountPaid, amountPaidTo: contradiction.amountPaid } : {}),
                },
              },
            ],
            contradiction ? () => [db.select({ updatedAt: invoices.updatedAt }).from(invoices).where(eq(invoices.id, invoice.id))] : undefined,
            contradiction
              ? {
                  auditIf: sql`EXISTS (SELECT 1 FROM ${invoices} WHERE id = ${invoice.id} AND updated_at = ${now} AND status = ${contradiction.to})`,
                  recorded: (r) => (r.at(-1) as { updatedAt: number }[])[0]?.updatedAt === now,
                }
              : undefined,
          );
          if (contradiction && (results.at(-1) as { updatedAt: number }[] | undefined)?.[0]?.updatedAt !== now) continue; // changed meanwhile: the next run compares it again
          if (repair.kind !== "stripe_state") {
            if (ours !== repair.to) report.changed.push({ invoiceId: invoice.id, from: ours, to: repair.to, source: "reconciliation" });
            await this.officeStatus(work, "settled", requestId, { invoiceId: invoice.id, event: "reconciliation" });
          }
          // Now as Stripe has it: remembered as agreeing at its new version.
          const [after] = await db.select({ status: invoices.status, updatedAt: invoices.updatedAt }).from(invoices).where(eq(invoices.id, invoice.id));
          if (after && (after.status === "paid" || after.status === "void") && (repair.kind === "stripe_state" || after.status === repair.to)) this.markVerified(invoice.id, after.updatedAt);
        } catch (err) {
          // Stripe or the database did not answer: tomorrow's run (or a webhook) catches up.
          console.error(JSON.stringify({ level: "error", msg: "reconciliation of an invoice failed", officeId: this.host.officeId, invoiceId: invoice.id, error: err instanceof StripeCallError ? err.code : err instanceof Error ? err.name : "error" }));
          report.failed.push(invoice.id);
        }
      }
      await this.dunning(work);
      return { ...report, checked };
    });
  }

  /** Remembers that a settled invoice, as of its `updatedAt`, agrees with Stripe. */
  private markVerified(invoiceId: string, updatedAt: number) {
    this.host.storage.sql.exec(
      "INSERT INTO stripe_verified (invoice_id, updated_at) VALUES (?, ?) ON CONFLICT (invoice_id) DO UPDATE SET updated_at = excluded.updated_at",
      invoiceId,
      updatedAt,
    );
  }

  private invoiceForStripe(work: Work, invoice: InvoiceRow): InvoiceForStripe {
    const lines = work.lines.filter((l) => l.invoiceId === invoice.id);
    return {
      id: invoice.id,
      currency: invoice.currency,
      periodStart: invoice.periodStart,
      periodEnd: invoice.periodEnd,
      lines: lines.map((l) => ({
        id: l.id,
        description: l.description,
        amount: l.amount,
        quantity: l.quantity,
        unitAmount: l.unitAmount,
        // Each line's own period (a prorated fee's billed days), as local midnights in the office's zone.
        ...(invoice.kind === "monthly" && l.periodStart && l.periodEnd
          ? { periodStartAt: startOfLocalDay(l.periodStart, work.office.timeZone), periodEndAt: startOfLocalDay(l.periodEnd, work.office.timeZone) }
          : {}),
      })),
    };
  }

  /**
   * Pushes one finalized internal invoice: create the draft (its id stored at once, so a retry
   * days later never creates a second), add every line in one call, finalize. Three Stripe calls
   * whatever the patient count. A resumed push first asks Stripe where the invoice stands.
   */
  private async pushOne(work: Work, invoice: InvoiceRow): Promise<void> {
    const requestId = `outbox:push:${invoice.id}`;
    const ring = await dataKeyring(this.host.config);
    const payload = this.invoiceForStripe(work, invoice);
    const periodDates = [invoice.periodStart, invoice.periodEnd];
    const customerId = await this.customerId(work, requestId);
    const gateway = this.gateway(work, periodDates, requestId);
    gateway.invoicePayloads(customerId, payload); // nothing is sent unless both payloads pass their schemas
    let state: StripeInvoiceState | null = null;
    let stripeId: string;
    if (invoice.stripeInvoiceRef) {
      stripeId = await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef);
      state = await gateway.readInvoice(stripeId);
    } else {
      const draft = await gateway.createDraft(customerId, payload);
      stripeId = draft.id;
      const sealed = await sealReference(ring, invoiceCol, invoice.id, stripeId);
      const db = this.host.db;
      await this.host.commit(
        "stripe.draft",
        () => [
          db.run(sql`UPDATE ${invoices} SET stripe_invoice_ref = ${sealed.ref}, stripe_invoice_index = ${sealed.index}, stripe_state = 'draft_created', updated_at = ${clock.now()}
            WHERE id = ${invoice.id} AND stripe_state = 'none'`),
        ],
        [],
      );
      invoice.stripeInvoiceRef = sealed.ref;
      invoice.stripeState = "draft_created";
    }
    if (!state || (state.status === "draft" && state.lineCount === 0)) await gateway.addLines(stripeId, customerId, payload);
    const final = !state || state.status === "draft" ? await gateway.finalize(stripeId, invoice.id) : state;
    const db = this.host.db;
    await this.host.commit(
      "stripe.push",
      () => [db.run(sql`UPDATE ${invoices} SET stripe_state = 'finalized', stripe_error = NULL, updated_at = ${clock.now()} WHERE id = ${invoice.id} AND stripe_state IN ('none','draft_created','failed')`)],
      [
        {
          ...OUTBOX_ACTOR,
          requestId,
          action: "stripe.invoice_pushed",
          outcome: "succeeded",
          targetIds: [invoice.id],
          details: { total: invoice.total, lines: payload.lines.length, stripeStatus: final.status, stripeAmountDue: final.amountDue, stripeCalls: gateway.calls },
        },
      ],
    );
    if (final.amountDue !== invoice.total && final.status !== "void") {
      console.error(JSON.stringify({ level: "error", msg: "stripe invoice total differs from ours", officeId: this.host.officeId, invoiceId: invoice.id, ours: invoice.total, stripe: final.amountDue }));
    }
  }

  /** Voids the Stripe copy of an invoice voided here; a draft never finalized is simply abandoned. */
  private async voidOne(work: Work, invoice: InvoiceRow): Promise<boolean> {
    const db = this.host.db;
    const requestId = `outbox:void:${invoice.id}`;
    let next: "voided" | "abandoned" = "abandoned";
    if (invoice.stripeInvoiceRef) {
      // Whatever we recorded, Stripe's own state decides: a finalize may have reached Stripe unrecorded.
      const ring = await dataKeyring(this.host.config);
      const stripeId = await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef);
      const gateway = this.gateway(work, [invoice.periodStart, invoice.periodEnd], requestId);
      const current = await gateway.readInvoice(stripeId);
      if (current.status === "open" || current.status === "uncollectible") {
        await gateway.voidInvoice(stripeId, invoice.id);
        next = "voided";
      } else if (current.status === "void") {
        next = "voided";
      } else if (current.status !== "draft") {
        // Paid on Stripe: the money was collected; billing staff refund it (the invoice records why).
        throw new StripeCallError("void", false, `invoice_${current.status}`, null);
      }
    }
    await this.host.commit(
      "stripe.void",
      () => [db.run(sql`UPDATE ${invoices} SET stripe_state = ${next}, stripe_error = NULL, updated_at = ${clock.now()} WHERE id = ${invoice.id} AND stripe_state IN ('draft_created','finalized')`)],
      [{ ...OUTBOX_ACTOR, requestId, action: next === "voided" ? "stripe.invoice_voided" : "stripe.draft_abandoned", outcome: "succeeded", targetIds: [invoice.id] }],
    );
    return next === "voided";
  }

  /** Makes a pending refund on Stripe against the invoice's payment, then records it. */
  async refundOne(work: Pick<Work, "office" | "patientKeys">, refund: RefundRow, known?: StripeInvoiceState): Promise<{ stripeStatus: string }> {
    const db = this.host.db;
    const ring = await dataKeyring(this.host.config);
    const requestId = `outbox:refund:${refund.id}`;
    const [invoice] = await db.select().from(invoices).where(eq(invoices.id, refund.invoiceId));
    if (!invoice?.stripeInvoiceRef) throw new StripeCallError("refund", false, "invoice_not_on_stripe", null);
    // Stripe keeps idempotency keys for 24 hours: past that, a retry could refund twice. An
    // unconfirmed refund that old is left to billing staff (failed, `needs_review`) instead.
    if (clock.now() - refund.createdAt > REFUND_RETRY_WINDOW_MS) throw new StripeCallError("refund", false, "needs_review", null);
    const gateway = this.gateway(work, [], requestId);
    const state = known ?? (await gateway.readInvoice(await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef)));
    if (!state.paymentIntent) throw new StripeCallError("refund", false, "invoice_not_paid", null);
    const made = await gateway.refund({ refundId: refund.id, invoiceId: invoice.id, paymentIntent: state.paymentIntent, amount: refund.amount, reason: stripeReason(refund.reason) });
    // `pending` is Stripe's own processing (some payment methods): made. `failed`/`canceled`: not made.
    if (made.status === "failed" || made.status === "canceled") throw new StripeCallError("refund", false, `refund_${made.status}`, null);
    const sealed = await sealReference(ring, refundCol, refund.id, made.id);
    const now = clock.now();
    await this.host.commit(
      "refund.record",
      () => [
        db.run(sql`UPDATE ${refunds} SET status = 'succeeded', stripe_refund_ref = ${sealed.ref}, stripe_refund_index = ${sealed.index}, error_code = NULL, updated_at = ${now}
          WHERE id = ${refund.id} AND status = 'pending'`),
        // Monotonic: the refunds Stripe made for us, or what a charge.refunded webhook reported, whichever is more.
        db.run(sql`UPDATE ${invoices} SET amount_refunded = MIN(amount_paid, MAX(amount_refunded,
            (SELECT COALESCE(SUM(amount), 0) FROM ${refunds} WHERE invoice_id = ${refund.invoiceId} AND status = 'succeeded'))), updated_at = ${now}
          WHERE id = ${refund.invoiceId}`),
      ],
      [{ ...OUTBOX_ACTOR, requestId, action: "refund.succeeded", outcome: "succeeded", targetIds: [refund.id, refund.invoiceId], details: { amount: refund.amount } }],
    );
    return { stripeStatus: made.status };
  }
}

export type Repair =
  /** Stripe is ahead of ours (a missed webhook): ours moves forward. */
  | { kind: "forward"; to: InvoiceStatus; finalizedOnStripe: boolean }
  /** Ours says what no Stripe object supports: set to Stripe's status and paid amount (≤ our total). */
  | { kind: "contradiction"; to: InvoiceStatus; amountPaid: number; stripeState: "finalized" | "voided" | "draft_created"; finalizedOnStripe: boolean }
  /** Only the record of the push is behind (Stripe finalized a draft we created). */
  | { kind: "stripe_state"; finalizedOnStripe: true };

/**
 * How a pushed invoice of ours compares with Stripe's object (docs/payment-plan.md §9.5); null
 * when they agree. Stripe's draft stands for `open` here (ours is finalized; the push resumes).
 */
export function reconcileInvoice(invoice: Pick<InvoiceRow, "status" | "stripeState" | "total" | "amountPaid">, current: Pick<StripeInvoiceState, "status" | "amountPaid">): Repair | null {
  const ours = invoice.status as InvoiceStatus;
  const finalizedOnStripe = current.status !== "draft" && invoice.stripeState === "draft_created";
  const theirs: InvoiceStatus = current.status === "draft" ? "open" : current.status;
  const paid = Math.min(invoice.total, Math.max(0, current.amountPaid));
  if (ours === "draft") return null; // never pushed: not Stripe's to say
  if (ours === theirs && (ours !== "paid" || invoice.amountPaid === paid)) return finalizedOnStripe ? { kind: "stripe_state", finalizedOnStripe } : null;
  const decision = decideFromStripe(ours, theirs);
  if (decision.kind === "apply") return { kind: "forward", to: decision.to, finalizedOnStripe };
  // A void here that Stripe never saw as void: the Stripe copy was abandoned as a draft (fine), else ours is wrong.
  if (ours === "void" && invoice.stripeState === "abandoned" && current.status === "draft") return null;
  return {
    kind: "contradiction",
    to: theirs,
    amountPaid: theirs === "paid" ? paid : 0,
    stripeState: theirs === "void" ? "voided" : current.status === "draft" ? "draft_created" : "finalized",
    finalizedOnStripe: false,
  };
}

/** Our fixed refund reasons, as Stripe's own categories where one fits (no free text crosses). */
function stripeReason(reason: RefundRow["reason"]): "duplicate" | "requested_by_customer" | undefined {
  return reason === "duplicate" ? "duplicate" : reason === "requested_by_customer" ? "requested_by_customer" : undefined;
}
