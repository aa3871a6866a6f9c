import { eq, sql } from "drizzle-orm";
import { ZodError } from "zod";
import { stripeRateLimit } from "../config";
import { invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { patients } from "../db/patients";
import { refunds } from "../db/refunds";
import { creditNotes } from "../db/credit-notes";
import { webhookEvents } from "../db/webhook-events";
import { suspensionAt } from "../billing/payments";
import { ApiError } from "../errors";
import { dataKeyring, openReference, sealReference, sealValue } from "../security/data-keys";
import { backoffDelay, StripeCallError, stripeGateway, type StripeGateway, type StripeInvoiceState } from "../stripe/gateway";
import { stripePacer } from "../stripe/rate-limiter";
import { BufferedRequestLog } from "./stripe-request-log";
import { officeAddressAllowance } from "../stripe/office-address";
import * as clock from "../clock";

import { PaymentMethods } from "./payment-methods";
import { refundOne, voidOne } from "./stripe-undo";
import { pushOne } from "./stripe-push";
import { InvoiceTaxes } from "./invoice-tax";
import { StripeEvents } from "./stripe-events";
import { StripeReconciliation } from "./stripe-reconcile";
import { StripeCreditNotes } from "./stripe-credit-notes";
import {
  customerCol,
  documentsCol,
  emptyReport,
  LEASE_MS,
  OUTBOX_ACTOR,
  OUTBOX_BASE_MS,
  OUTBOX_CAP_MS,
  REFUND_RETRY_WINDOW_MS,
  type InvoiceRow,
  type OutboxHost,
  type RefundRow,
  type RetryRow,
  type SyncReport,
  type Work,
  workReads,
} from "./stripe-work";

export { emptyReport, OUTBOX_ACTOR, OUTBOX_BASE_MS, OUTBOX_CAP_MS, REFUND_RETRY_WINDOW_MS, WEBHOOK_ACTOR, workReads, type OutboxHost, type SyncReport, type Work } from "./stripe-work";
export { reconcileInvoice, type Repair } from "./stripe-reconcile";

/**
 * The office's Stripe outbox. Stripe is only ever called here, outside the object's exclusive
 * queue (a slow Stripe never holds up activations), one item at a time (`#lock`), and each
 * outcome is written back through the host's audited write. Retryable failures are rescheduled
 * with backoff on the object's alarm; permanent ones are recorded on the invoice or refund.
 */
export class StripeOutbox {
  #lock: Promise<unknown> = Promise.resolve();

  readonly events: StripeEvents;
  readonly reconciliation: StripeReconciliation;
  readonly paymentMethods: PaymentMethods;
  readonly taxes: InvoiceTaxes;
  readonly creditNotes: StripeCreditNotes;
  /** The Stripe request log's rows, written with the outbox's commits (stripe-request-log.ts). */
  readonly requestLog: BufferedRequestLog;

  constructor(readonly host: OutboxHost) {
    this.requestLog = new BufferedRequestLog(host.storage, host.db);
    this.events = new StripeEvents(this);
    this.reconciliation = new StripeReconciliation(this, this.events);
    this.paymentMethods = new PaymentMethods(this);
    this.taxes = new InvoiceTaxes(host);
    this.creditNotes = new StripeCreditNotes(this);
    host.storage.sql.exec("CREATE TABLE IF NOT EXISTS stripe_retry (item TEXT PRIMARY KEY, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL, last_error TEXT)");
    host.storage.sql.exec("CREATE TABLE IF NOT EXISTS stripe_verified (invoice_id TEXT PRIMARY KEY, updated_at INTEGER NOT NULL)");
    host.storage.sql.exec("CREATE TABLE IF NOT EXISTS stripe_lease (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, until INTEGER NOT NULL)");
    // A new instance of the object means the previous one is gone: its lease goes with it.
    host.storage.sql.exec("DELETE FROM stripe_lease");
  }

  /**
   * Extends the lease once less than half of it is left: every write of the object's storage is a
   * transaction of its own, and one per item would cost more than the lease protects.
   */
  private renewLease() {
    const now = Date.now();
    if (now < this.#leaseUntil - LEASE_MS / 2) return;
    this.host.storage.sql.exec("UPDATE stripe_lease SET until = ? WHERE holder = ?", now + LEASE_MS, this.#holder);
    this.#leaseUntil = now + LEASE_MS;
  }

  /** Until when this instance holds the lease, as it last wrote it (0: not held). */
  #leaseUntil = 0;

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
      if (taken.length > 0) {
        this.#leaseUntil = now + LEASE_MS;
        return;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private release() {
    this.host.storage.sql.exec("DELETE FROM stripe_lease WHERE holder = ?", this.#holder);
    this.#leaseUntil = 0;
  }

  /**
   * Runs `fn` after any Stripe work already under way for this office. Request-log rows no commit
   * of `fn` took (a read, a retryable failure) are written when it ends (one round trip, only then).
   */
  serialized<T>(fn: () => Promise<T>): Promise<T> {
    const leased = async () => {
      await this.lease();
      try {
        return await fn();
      } finally {
        this.requestLog.prime(new Map());
        await this.flushRequestLog();
        this.release();
      }
    };
    const run = this.#lock.then(leased, leased);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /** Writes the request-log rows still kept; a failure leaves them for the next commit. */
  private async flushRequestLog(): Promise<void> {
    try {
      await this.requestLog.flush();
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "stripe request log rows kept for the next commit", officeId: this.host.officeId, error: err instanceof Error ? err.name : "error" }));
    }
  }

  /** Asks the alarm to run the outbox now (unless it is already due sooner). */
  async schedule(at = Date.now()): Promise<void> {
    const current = await this.host.storage.getAlarm();
    // An alarm already overdue is set again: one whose run was cut off (the process ended while
    // its handler ran) can stay stored without a timer behind it after a restart (seen in local
    // workerd: the office's Stripe work then never ran again). Setting it re-arms it; a due alarm
    // fires at once either way.
    const now = Date.now();
    if (current === null || current > at) await this.host.storage.setAlarm(at);
    else if (current < now) await this.host.storage.setAlarm(now); // still due now, never pushed later
  }

  retries(): RetryRow[] {
    return this.host.storage.sql.exec<RetryRow>("SELECT item, attempts, next_at, last_error FROM stripe_retry ORDER BY next_at").toArray();
  }

  private retryOf(item: string): RetryRow | undefined {
    return this.host.storage.sql.exec<RetryRow>("SELECT item, attempts, next_at, last_error FROM stripe_retry WHERE item = ?", item).toArray()[0];
  }

  private clearRetry(item: string) {
    // Written only when there is something to clear: most items succeed at their first attempt.
    if (this.retryOf(item)) this.host.storage.sql.exec("DELETE FROM stripe_retry WHERE item = ?", item);
  }

  private scheduleRetry(item: string, error: string, at: number | null = null): number {
    const attempts = (this.retryOf(item)?.attempts ?? 0) + 1;
    // A time the refusal named (the pacer's full line) comes with a little jitter; else the backoff.
    const nextAt = at !== null ? at + Math.round(Math.random() * 1000) : Date.now() + backoffDelay(attempts, this.host.config.STRIPE_OUTBOX_RETRY_MS ?? OUTBOX_BASE_MS, OUTBOX_CAP_MS);
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
    const [officeRows, invoiceRows, lineRows, refundRows, keyRows, eventRows, graceRows, dueRows, creditNoteRows, firstUseRows] = await this.host.db.batch(workReads(this.host.db, this.host.officeId));
    const office = officeRows[0];
    if (!office) return null;
    const firstUses = new Map<string, number | null>([`customer_${office.id}`, ...invoiceRows.filter((i) => i.status === "open").map((i) => `invoice_${i.id}_create`)].map((k) => [k, null]));
    for (const r of firstUseRows) if (r.key) firstUses.set(r.key, r.at);
    this.requestLog.prime(firstUses);
    return {
      office,
      invoices: invoiceRows,
      lines: lineRows,
      refunds: refundRows,
      patientKeys: keyRows.map((r) => r.patientKey),
      events: eventRows,
      graceDays: graceRows[0]?.graceDays ?? 14,
      dueInvoices: dueRows,
      creditNotes: creditNoteRows,
      firstUses,
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
      guard: {
        billingEmail: work.office.billingEmail,
        periodDates,
        patientKeys: work.patientKeys,
        ...officeAddressAllowance(work.office.billingAddress, allowedValues),
      },
      pacer: stripePacer(env, stripeRateLimit(config)),
      requestLog: this.requestLog,
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
    const customer = await this.gateway(work, [], requestId).ensureCustomer({ id: office.id, legalName: office.legalName, billingEmail: office.billingEmail, billingAddress: office.billingAddress });
    const sealed = await sealReference(ring, customerCol, office.id, customer.id);
    // The customer carries the profile as read (a change since is sent by the profile step).
    const rows = (await this.host.commit(
      "stripe.customer",
      () => [
        this.host.db.run(
          sql`UPDATE ${offices} SET stripe_customer_ref = ${sealed.ref}, stripe_customer_index = ${sealed.index}, stripe_profile_version = ${office.profileVersion} WHERE id = ${office.id} AND stripe_customer_ref IS NULL`,
        ),
      ],
      [{ ...OUTBOX_ACTOR, requestId, action: "stripe.customer_created", outcome: "succeeded", targetIds: [office.id], ...(customer.adopted ? { details: { adopted: true } } : {}) }],
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
        await this.attempt(item, report, event.id, () => this.events.processEvent(work, event, report).then(() => void report.events.push(event.id)));
      }
      if (work.events.length > 0) {
        const fresh = await this.readWork();
        if (fresh) Object.assign(work, { ...fresh, events: [] });
      }
      await this.events.dunning(work);
      // The office's profile onto its customer (§4.2), once the customer exists (a new one is created with it).
      if (work.office.stripeCustomerRef && work.office.profileVersion > work.office.stripeProfileVersion) {
        const item = `profile:${work.office.profileVersion}`;
        if (due(item)) await this.attempt(item, report, work.office.id, () => this.pushProfile(work));
      }
      for (const invoice of work.invoices) {
        const item = invoice.status === "void" ? `void:${invoice.id}` : `push:${invoice.id}`;
        if (!due(item)) continue;
        await this.attempt(item, report, invoice.id, () =>
          invoice.status === "void"
            ? this.voidOne(work, invoice).then((done) => void (done && report.voided.push(invoice.id)))
            : this.pushOne(work, invoice).then((pushed) => void (pushed ? report.pushed : report.held).push(invoice.id)),
        );
      }
      for (const refund of work.refunds) {
        const item = `refund:${refund.id}`;
        if (!due(item)) continue;
        await this.attempt(item, report, refund.id, () => this.refundOne(work, refund).then(() => void report.refunded.push(refund.id)));
      }
      for (const note of work.creditNotes) {
        const item = `credit_note:${note.id}`;
        if (!due(item)) continue;
        await this.attempt(item, report, note.id, () => this.creditNotes.issueOne(work, note).then(() => undefined));
      }
      // Retry rows of work that no longer exists (done elsewhere) are dropped; the rest re-arm the alarm.
      for (const r of this.retries()) if (!live.has(r.item)) this.clearRetry(r.item);
      const next = this.retries()[0];
      if (next) await this.schedule(next.next_at);
      // A past-due office is suspended when its grace period ends: the alarm is there on time.
      if (work.office.status === "past_due" && work.office.pastDueSince !== null) await this.schedule(suspensionAt(work.office.pastDueSince, work.graceDays));
      // An invoice sent by e-mail that is still open when it falls due starts dunning then (§10).
      const nextDue = work.dueInvoices.find((i) => i.dueAt !== null)?.dueAt;
      if (nextDue) await this.schedule(nextDue);
      return report;
    });
  }

  /** Sends the office's profile to its customer (§4.2), keyed by the profile version, and records that Stripe has it. */
  private async pushProfile(work: Work): Promise<void> {
    const { office } = work;
    const version = office.profileVersion;
    const requestId = `outbox:profile:${version}`;
    const customerId = await this.customerId(work, requestId);
    await this.gateway(work, [], requestId).updateCustomer(customerId, { id: office.id, legalName: office.legalName, billingEmail: office.billingEmail, billingAddress: office.billingAddress }, version);
    await this.host.commit(
      "stripe.customer_update",
      () => [this.host.db.run(sql`UPDATE ${offices} SET stripe_profile_version = MAX(stripe_profile_version, ${version}) WHERE id = ${office.id}`)],
      [{ ...OUTBOX_ACTOR, requestId, action: "stripe.customer_updated", outcome: "succeeded", targetIds: [office.id], details: { profileVersion: version } }],
    );
    // Stripe carries it now: a push held for the profile (§11.7) may go in this same run.
    office.stripeProfileVersion = Math.max(office.stripeProfileVersion, version);
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
        this.scheduleRetry(item, code ?? (err instanceof Error ? err.name : "error"), err instanceof StripeCallError ? err.retryAt : null);
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
        kind === "profile"
          ? // Refused for good (e.g. blocked by the guard): recorded and not retried until the next profile change.
            [db.run(sql`UPDATE ${offices} SET stripe_profile_version = MAX(stripe_profile_version, ${Number(item.split(":")[1])}) WHERE id = ${id}`)]
          : kind === "refund"
          ? [db.run(sql`UPDATE ${refunds} SET status = 'failed', error_code = ${code}, updated_at = ${now} WHERE id = ${id} AND status = 'pending'`)]
          : kind === "credit_note"
          ? [db.run(sql`UPDATE ${creditNotes} SET status = 'failed', error_code = ${code}, updated_at = ${now} WHERE id = ${id} AND status = 'pending'`)]
          : kind === "event"
            ? [db.run(sql`UPDATE ${webhookEvents} SET status = 'failed', attempts = attempts + 1, error = ${code}, processed_at = ${now} WHERE id = ${id}`)]
            : [db.run(sql`UPDATE ${invoices} SET stripe_state = 'failed', stripe_error = ${code}, updated_at = ${now} WHERE id = ${id}`)],
      [
        {
          ...OUTBOX_ACTOR,
          requestId: `outbox:${item}`,
          action: kind === "profile" ? "stripe.customer_update_failed" : kind === "refund" ? "refund.failed" : kind === "credit_note" ? "credit_note.failed" : kind === "event" ? "webhook.failed" : kind === "void" ? "stripe.void_failed" : "stripe.push_failed",
          outcome: "failed",
          targetIds: [id],
          details: { code },
        },
      ],
    );
  }

  /** Reconciliation of every pushed invoice with Stripe (stripe-reconcile.ts), serialized with the outbox's other work. */
  reconcile(): Promise<SyncReport & { checked: number }> {
    return this.reconciliation.run();
  }

  /**
   * Pushes one finalized internal invoice (stripe-push.ts): create the draft, add every line in
   * one call, finalize — three Stripe calls whatever the patient count.
   */
  private pushOne(work: Work, invoice: InvoiceRow): Promise<boolean> {
    return pushOne(this, work, invoice);
  }

  /** Stripe's document links of a finalized invoice, sealed for its row (null before Stripe has them). */
  async sealDocuments(invoiceId: string, state: Pick<StripeInvoiceState, "number" | "hostedInvoiceUrl" | "invoicePdf">): Promise<string | null> {
    if (!state.number || !state.hostedInvoiceUrl) return null;
    const ring = await dataKeyring(this.host.config);
    return sealValue(ring, documentsCol, invoiceId, JSON.stringify({ hostedInvoiceUrl: state.hostedInvoiceUrl, invoicePdf: state.invoicePdf }));
  }

  /** Voids the Stripe copy of an invoice voided here (stripe-undo.ts). */
  private voidOne(work: Work, invoice: InvoiceRow): Promise<boolean> {
    return voidOne(this, work, invoice);
  }

  /** Makes a pending refund on Stripe against the invoice's payment, then records it (stripe-undo.ts). */
  refundOne(work: Pick<Work, "office" | "patientKeys">, refund: RefundRow, known?: StripeInvoiceState): Promise<{ stripeStatus: string }> {
    return refundOne(this, work, refund, known);
  }
}
