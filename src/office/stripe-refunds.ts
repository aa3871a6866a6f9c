import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { invoices } from "../db/invoices";
import { refunds, type refundReasons } from "../db/refunds";
import { webhookEvents } from "../db/webhook-events";
import { lookupIndexes } from "../security/crypto";
import { dataKeyring, openReference, sealReference } from "../security/data-keys";
import { newId } from "../security/request-id";
import { paymentIntentOfCharge, StripeCallError, type StripeInvoiceState, type StripeRefundState } from "../stripe/gateway";
import type { StripeEvent } from "../stripe/webhooks";
import * as clock from "../clock";

import type { StripeEvents } from "./stripe-events";
import type { StripeOutbox } from "./stripe-sync";
import { invoiceCol, OUTBOX_ACTOR, refundCol, refundedTotal, REFUND_RETRY_WINDOW_MS, WEBHOOK_ACTOR, type EventRow, type InvoiceRow, type RefundRow, type SyncReport, type Work } from "./stripe-work";

type Status = RefundRow["status"];
type Statement = ReturnType<Database["run"]>;

/** Stripe's refund status as ours (docs/payment-plan.md §8.7). */
export function refundStatusOf(stripeStatus: string): Status {
  if (stripeStatus === "succeeded") return "succeeded";
  if (stripeStatus === "failed" || stripeStatus === "canceled") return "failed";
  return "pending"; // pending, requires_action
}

/** Whether our refund may move from one status to another: pending → succeeded | failed, succeeded → failed. */
export function refundMoves(from: Status, to: Status): boolean {
  return (from === "pending" && to !== "pending") || (from === "succeeded" && to === "failed");
}

/** The reason of a refund made outside this API, as one of our fixed categories. */
const reasonOf = (stripeReason: string | null): (typeof refundReasons)[number] => (stripeReason === "duplicate" || stripeReason === "requested_by_customer" ? stripeReason : "billing_error");

const str = (v: unknown) => (typeof v === "string" ? v : null);
const metadataOf = (o: unknown) => ((o && typeof o === "object" ? o : {}) as Record<string, unknown>);

/**
 * Stripe's refund events (`refund.created`, `refund.updated`, `refund.failed`,
 * `charge.refund.updated`) and `charge.refunded`, applied to one office (docs/payment-plan.md
 * §9.6): the refund (or the charge's refunds) is read from Stripe — the event is a hint — bound
 * only through ids we stored, and recorded with Stripe's current status; the invoice's
 * `amountRefunded` is recomputed in the same batch.
 */
export class StripeRefunds {
  constructor(
    private readonly outbox: StripeOutbox,
    private readonly events: StripeEvents,
  ) {}

  private get host() {
    return this.outbox.host;
  }

  async process(work: Work, event: EventRow, report: SyncReport): Promise<void> {
    const payload = event.payload as StripeEvent;
    const obj = payload.data.object;
    const at = payload.created * 1000;
    const requestId = `webhook:${event.id}`;
    const gateway = this.outbox.gateway(work, [], requestId);
    const db = this.host.db;
    const isCharge = event.type === "charge.refunded";
    const meta = metadataOf(obj.metadata);
    // Our references the event carries: hints, compared with what the stored ids name.
    const listed = isCharge ? ((obj.refunds as { data?: { metadata?: unknown }[] } | undefined)?.data ?? []) : [];
    const hints = { invoiceRef: [meta.invoice_ref, ...listed.map((r) => metadataOf(r.metadata).invoice_ref)], officeRef: meta.office_ref };

    let atStripe: StripeRefundState[];
    try {
      const id = str(obj.id);
      atStripe = !id ? [] : isCharge ? await gateway.refundsOfCharge(id) : [await gateway.readRefund(id)];
    } catch (err) {
      // Stripe has no such refund or charge (a forged id): nothing to record.
      if (err instanceof StripeCallError && !err.retryable) return this.events.finishEvent(event, "ignored", { error: "unknown_at_stripe", code: err.code });
      throw err;
    }

    // 1. Refunds we made: found by the keyed index of their Stripe ids.
    const ring = await dataKeyring(this.host.config);
    const indexesOf = new Map<string, string[]>();
    for (const r of atStripe) indexesOf.set(r.id, await lookupIndexes(ring, "stripe_refund", r.id));
    const allIndexes = [...indexesOf.values()].flat();
    const known = allIndexes.length === 0 ? [] : await db.select().from(refunds).where(sql`${refunds.officeId} = ${this.host.officeId} AND ${refunds.stripeRefundIndex} IN (${sql.join(allIndexes.map((i) => sql`${i}`), sql`, `)})`);
    // 2. Else the invoice whose payment is the refunds' payment intent, as Stripe reports it.
    let bound: { invoice: InvoiceRow } | { mismatch: string } | null = null;
    if (known[0]) {
      const [row] = await db.select().from(invoices).where(eq(invoices.id, known[0].invoiceId));
      if (hints.officeRef !== undefined && hints.officeRef !== this.host.officeId) bound = { mismatch: "office_ref" };
      else if (row) bound = hints.invoiceRef.some((r) => r !== undefined && r !== row.id) ? { mismatch: "invoice_ref" } : { invoice: row };
    } else {
      const paymentIntent = atStripe.find((r) => r.paymentIntent)?.paymentIntent ?? (isCharge ? paymentIntentOfCharge(obj) : null);
      const stripeInvoiceId = paymentIntent ? await gateway.invoiceOfPaymentIntent(paymentIntent) : null;
      bound = await this.events.bindInvoice(stripeInvoiceId, hints);
    }
    if (bound && "mismatch" in bound) return this.events.rejectEvent(event, bound.mismatch);
    if (!bound) return this.events.finishEvent(event, "ignored", { error: "invoice_unknown" });
    let { invoice } = bound;
    if (!invoice.stripeInvoiceRef) return this.events.finishEvent(event, "ignored", { invoiceId: invoice.id, error: "invoice_not_pushed" }, [], [invoice.id]);

    const statements: Statement[] = [];
    const now = clock.now();
    let amountPaid = invoice.amountPaid;
    const wasPaid = invoice.status === "paid";
    if (!wasPaid && atStripe.length > 0) {
      // The refund came before the payment's own event: Stripe's state of the invoice decides.
      const current = await gateway.readInvoice(await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef));
      if (current.status !== "paid") return this.events.finishEvent(event, "ignored", { invoiceId: invoice.id, error: "invoice_not_paid" }, [], [invoice.id]);
      statements.push(...this.events.moveInvoice(invoice, "paid", { amountPaid: current.amountPaid }, at));
      amountPaid = Math.min(invoice.total, Math.max(invoice.amountPaid, current.amountPaid));
      report.changed.push({ invoiceId: invoice.id, from: invoice.status, to: "paid", source: "stripe_read" });
      invoice = { ...invoice, status: "paid" };
    }

    // Each refund Stripe has: moved (ours), adopted (ours, its answer lost), or recorded (made outside this API).
    const ofInvoice = await db.select().from(refunds).where(eq(refunds.invoiceId, invoice.id));
    const after = new Map(ofInvoice.map((r) => [r.id, { status: r.status, onStripe: r.stripeRefundIndex !== null, amount: r.amount }]));
    const audits: { action: string; targetIds: string[]; details: Record<string, unknown> }[] = [];
    const changes: { refundId: string; from: Status | null; to: Status }[] = [];
    for (const s of atStripe) {
      const to = refundStatusOf(s.status);
      const errorCode = to === "failed" ? (s.failureReason ?? (s.status === "canceled" ? "refund_canceled" : "refund_failed")) : null;
      const indexes = indexesOf.get(s.id) ?? [];
      const ours = ofInvoice.find((r) => r.stripeRefundIndex !== null && indexes.includes(r.stripeRefundIndex));
      if (ours) {
        if (!refundMoves(ours.status, to)) continue;
        statements.push(db.run(sql`UPDATE ${refunds} SET status = ${to}, error_code = ${errorCode}, updated_at = ${now} WHERE id = ${ours.id} AND status = ${ours.status}`));
        after.set(ours.id, { status: to, onStripe: true, amount: ours.amount });
        changes.push({ refundId: ours.id, from: ours.status, to });
        audits.push({ action: to === "failed" ? "refund.failed" : "refund.succeeded", targetIds: [ours.id, invoice.id], details: { amount: ours.amount, stripeStatus: s.status, ...(errorCode ? { failureReason: errorCode } : {}) } });
        continue;
      }
      const refundRef = str(s.metadata.refund_ref);
      // Ours, whose answer did not reach us (still pending), or that Stripe answered `failed` (recorded failed, without its id).
      const lost = refundRef ? ofInvoice.find((r) => r.id === refundRef && r.stripeRefundIndex === null && r.amount === s.amount) : undefined;
      const rowId = lost?.id ?? newId("rf");
      const sealed = await sealReference(ring, refundCol, rowId, s.id);
      if (lost) {
        const moves = refundMoves(lost.status, to);
        statements.push(db.run(sql`UPDATE ${refunds} SET stripe_refund_ref = ${sealed.ref}, stripe_refund_index = ${sealed.index}, updated_at = ${now}
          ${moves ? sql`, status = ${to}, error_code = ${errorCode}` : sql``} WHERE id = ${lost.id} AND status = ${lost.status} AND stripe_refund_index IS NULL`));
        if (moves) audits.push({ action: to === "failed" ? "refund.failed" : "refund.succeeded", targetIds: [lost.id, invoice.id], details: { amount: s.amount, stripeStatus: s.status, adopted: true } });
        if (!moves && lost.status === "pending") audits.push({ action: "refund.pending_on_stripe", targetIds: [lost.id, invoice.id], details: { amount: s.amount, stripeStatus: s.status, adopted: true } });
        after.set(rowId, { status: moves ? to : lost.status, onStripe: true, amount: s.amount });
        changes.push({ refundId: rowId, from: lost.status, to: moves ? to : lost.status });
        continue;
      } else {
        statements.push(db.run(sql`INSERT INTO ${refunds} (id, office_id, invoice_id, amount, reason, status, stripe_refund_ref, stripe_refund_index, error_code, requested_by, created_at, updated_at)
          SELECT ${rowId}, ${this.host.officeId}, ${invoice.id}, ${s.amount}, ${reasonOf(s.reason)}, ${to}, ${sealed.ref}, ${sealed.index}, ${errorCode}, 'stripe', ${now}, ${now}
          WHERE NOT EXISTS (SELECT 1 FROM ${refunds} WHERE stripe_refund_index = ${sealed.index})`));
        audits.push({ action: "refund.recorded_from_stripe", targetIds: [rowId, invoice.id], details: { amount: s.amount, stripeStatus: s.status, reason: reasonOf(s.reason), ...(errorCode ? { failureReason: errorCode } : {}) } });
      }
      after.set(rowId, { status: to, onStripe: true, amount: s.amount });
      changes.push({ refundId: rowId, from: null, to });
    }
    const total = Math.min(amountPaid, [...after.values()].filter((r) => r.onStripe && r.status !== "failed").reduce((sum, r) => sum + r.amount, 0));
    if (changes.length > 0) statements.push(refundedTotal(db, invoice.id, now));
    for (const a of audits) a.details = { ...a.details, amountRefunded: { from: invoice.amountRefunded, to: total } };
    await this.commitEvent(event, { invoiceId: invoice.id, refunds: changes, amountRefunded: total }, statements, [invoice.id, ...changes.map((c) => c.refundId)], audits);
    if (!wasPaid && atStripe.length > 0) await this.events.officeStatus(work, "settled", requestId, { invoiceId: invoice.id, event: event.type });
  }

  /**
   * The daily reconciliation's share (docs/payment-plan.md §9.5): each refund Stripe is still
   * processing (ours `pending` with its Stripe id) is read from Stripe and settled if Stripe has,
   * so a missed `refund.updated` / `refund.failed` does not leave it pending for good.
   */
  async reconcilePending(work: Work, report: SyncReport): Promise<number> {
    const db = this.host.db;
    const pending = await db.select().from(refunds).where(sql`${refunds.officeId} = ${this.host.officeId} AND ${refunds.status} = 'pending' AND ${refunds.stripeRefundRef} IS NOT NULL`);
    if (pending.length === 0) return 0;
    const ring = await dataKeyring(this.host.config);
    for (const row of pending) {
      const requestId = `reconcile:${row.id}`;
      try {
        const s = await this.outbox.gateway(work, [], requestId).readRefund(await openReference(ring, refundCol, row.id, row.stripeRefundRef!));
        const to = refundStatusOf(s.status);
        if (!refundMoves(row.status, to)) continue;
        const errorCode = to === "failed" ? (s.failureReason ?? (s.status === "canceled" ? "refund_canceled" : "refund_failed")) : null;
        const now = clock.now();
        await this.host.commit(
          "reconcile",
          () => [db.run(sql`UPDATE ${refunds} SET status = ${to}, error_code = ${errorCode}, updated_at = ${now} WHERE id = ${row.id} AND status = 'pending'`), refundedTotal(db, row.invoiceId, now)],
          [{ ...OUTBOX_ACTOR, requestId, action: to === "failed" ? "refund.failed" : "refund.succeeded", outcome: to === "failed" ? "failed" : "succeeded", targetIds: [row.id, row.invoiceId], details: { amount: row.amount, stripeStatus: s.status, source: "reconciliation", ...(errorCode ? { failureReason: errorCode } : {}) } }],
        );
      } catch (err) {
        console.error(JSON.stringify({ level: "error", msg: "reconciliation of a refund failed", officeId: this.host.officeId, refundId: row.id, error: err instanceof StripeCallError ? err.code : err instanceof Error ? err.name : "error" }));
        report.failed.push(row.id);
      }
    }
    return pending.length;
  }

  /** The event done, its refund changes and their audit entries, in one batch. */
  private async commitEvent(event: EventRow, details: Record<string, unknown>, statements: Statement[], targetIds: string[], audits: { action: string; targetIds: string[]; details: Record<string, unknown> }[]) {
    const db = this.host.db;
    const now = clock.now();
    const requestId = `webhook:${event.id}`;
    await this.host.commit(
      "webhook.process",
      () => [...statements, db.run(sql`UPDATE ${webhookEvents} SET status = 'processed', attempts = attempts + 1, processed_at = ${now}, error = NULL WHERE id = ${event.id}`)],
      [
        { ...WEBHOOK_ACTOR, requestId, action: `webhook.${event.type}`, outcome: "succeeded", targetIds: [event.id, ...targetIds], details },
        ...audits.map((a) => ({ ...WEBHOOK_ACTOR, requestId, action: a.action, outcome: a.action === "refund.failed" ? ("failed" as const) : ("succeeded" as const), targetIds: a.targetIds, details: a.details })),
      ],
    );
  }
}

/** Makes a pending refund on Stripe against the invoice's payment, then records it (docs/payment-plan.md §8.7). */
export async function makeRefund(outbox: StripeOutbox, work: Pick<Work, "office" | "patientKeys">, refund: RefundRow, known?: StripeInvoiceState): Promise<{ stripeStatus: string }> {
  const db = outbox.host.db;
  const ring = await dataKeyring(outbox.host.config);
  const requestId = `outbox:refund:${refund.id}`;
  const [invoice] = await db.select().from(invoices).where(eq(invoices.id, refund.invoiceId));
  if (!invoice?.stripeInvoiceRef) throw new StripeCallError("refund", false, "invoice_not_on_stripe", null);
  // Stripe keeps idempotency keys for 24 hours: past that, a retry could refund twice. An
  // unconfirmed refund that old is left to billing staff (failed, `needs_review`) instead.
  if (clock.now() - refund.createdAt > REFUND_RETRY_WINDOW_MS) throw new StripeCallError("refund", false, "needs_review", null);
  const gateway = outbox.gateway(work, [], requestId);
  const state = known ?? (await gateway.readInvoice(await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef)));
  if (!state.paymentIntent) throw new StripeCallError("refund", false, "invoice_not_paid", null);
  const made = await gateway.refund({ refundId: refund.id, invoiceId: invoice.id, paymentIntent: state.paymentIntent, amount: refund.amount, reason: stripeReason(refund.reason) });
  // `failed`/`canceled`: not made. `pending`/`requires_action`: made, and still ours `pending`
  // (with its Stripe id, so never made again) until Stripe's refund events settle it (§8.7, §9.6).
  if (made.status === "failed" || made.status === "canceled") throw new StripeCallError("refund", false, `refund_${made.status}`, null);
  const status = made.status === "succeeded" ? "succeeded" : "pending";
  const sealed = await sealReference(ring, refundCol, refund.id, made.id);
  const now = clock.now();
  await outbox.host.commit(
    "refund.record",
    () => [
      db.run(sql`UPDATE ${refunds} SET status = ${status}, stripe_refund_ref = ${sealed.ref}, stripe_refund_index = ${sealed.index}, error_code = NULL, updated_at = ${now}
        WHERE id = ${refund.id} AND status = 'pending' AND stripe_refund_index IS NULL`),
      refundedTotal(db, refund.invoiceId, now),
    ],
    [{ ...OUTBOX_ACTOR, requestId, action: status === "succeeded" ? "refund.succeeded" : "refund.pending_on_stripe", outcome: "succeeded", targetIds: [refund.id, refund.invoiceId], details: { amount: refund.amount, stripeStatus: made.status } }],
  );
  return { stripeStatus: made.status };
}

/** Our fixed refund reasons, as Stripe's own categories where one fits (no free text crosses). */
function stripeReason(reason: RefundRow["reason"]): "duplicate" | "requested_by_customer" | undefined {
  return reason === "duplicate" ? "duplicate" : reason === "requested_by_customer" ? "requested_by_customer" : undefined;
}

