import { eq, sql } from "drizzle-orm";
import { payableSql } from "../db/billing-sql";
import type { Database } from "../db/client";
import { creditNoteMemos, creditNotes } from "../db/credit-notes";
import { invoices } from "../db/invoices";
import { refunds } from "../db/refunds";
import { webhookEvents } from "../db/webhook-events";
import { lookupIndexes } from "../security/crypto";
import { dataKeyring, indexIn, openReference, sealReference } from "../security/data-keys";
import { newId } from "../security/request-id";
import { StripeCallError, type StripeCreditNoteState, type StripeGateway, type StripeInvoiceState } from "../stripe/gateway";
import type { StripeEvent } from "../stripe/webhooks";
import * as clock from "../clock";

import type { StripeOutbox } from "./stripe-sync";
import { recordExternalCreditNote, recordFromStripe } from "./stripe-credit-notes-external";
import { creditNoteCol, invoiceCol, OUTBOX_ACTOR, refundCol, refundedTotal, REFUND_RETRY_WINDOW_MS, WEBHOOK_ACTOR, type EventRow, type Work } from "./stripe-work";

export type CreditNoteRow = typeof creditNotes.$inferSelect;
type Statement = ReturnType<Database["run"]>;

/** What credit notes that still count take off an invoice (§8.10): every one not void nor failed. */
export const creditedSql = (invoiceId: string) => sql`(SELECT COALESCE(SUM(amount), 0) FROM ${creditNotes} WHERE invoice_id = ${invoiceId} AND status IN ('pending','issued'))`;

/**
 * An open invoice that credit notes Stripe has issued bring to 0 — its total with tax, a credit
 * note's amount including its tax — is paid (Stripe marks it so,
 * docs.stripe.com/invoicing/dashboard/credit-notes), with nothing paid; the compare-and-set only
 * moves an open or uncollectible invoice.
 */
function paidByCredit(db: Database, invoiceId: string, now: number): Statement {
  return db.run(sql`UPDATE ${invoices} SET status = 'paid', amount_paid = 0, paid_at = COALESCE(paid_at, ${now}), payment_failed_at = NULL, updated_at = ${now}
    WHERE id = ${invoiceId} AND status IN ('open','uncollectible')
      AND ${payableSql()} <= (SELECT COALESCE(SUM(amount), 0) FROM ${creditNotes} WHERE invoice_id = ${invoiceId} AND status = 'issued' AND settlement = 'none')`);
}

/**
 * Whether a per-line credit note goes to Stripe by line (§8.10): on an invoice without tax. On a
 * taxed one Stripe takes a line's amount before tax and credits its tax on top
 * (CreditNoteCreateParams.Line.amount: "If invoice is set up with `automatic_tax[enabled]=true`,
 * this amount is tax exclusive"), which our credit notes do not follow yet (§11.10): there the
 * credit note's total goes as `amount`, as for a whole-invoice credit.
 */
const byLine = (invoice: { taxMode: string | null }) => invoice.taxMode === null || invoice.taxMode === "none";

/**
 * Stripe's line of each of our credited lines, read back from the Stripe invoice whose id we stored
 * (each Stripe line carries our `line_ref`, set by the push): bound by our ids only, and never more
 * than Stripe's line amount — else the credit note fails for good (`line_not_on_stripe`) and billing staff look.
 */
async function stripeLinesOf(gateway: StripeGateway, stripeInvoiceId: string, lines: { lineId: string; amount: number }[]) {
  const ids = await gateway.invoiceLineIds(stripeInvoiceId);
  return lines.map((l) => {
    const found = ids.get(l.lineId);
    if (!found || found.amount < l.amount) throw new StripeCallError("creditNote", false, "line_not_on_stripe", null);
    return { stripeLineId: found.id, amount: l.amount };
  });
}

/**
 * Credit notes on Stripe (docs/payment-plan.md §8.10): a pending one created there with the key
 * `credit_note_<id>` and recorded `issued` (its refund, when it makes one, recorded as ours), and
 * Stripe's `credit_note.*` events, read from Stripe and bound only by the Stripe id we stored.
 */
export class StripeCreditNotes {
  constructor(private readonly outbox: StripeOutbox) {}

  private get host() {
    return this.outbox.host;
  }

  /** Creates a pending credit note on Stripe, then records it issued; returns Stripe's state. */
  async issueOne(work: Pick<Work, "office" | "patientKeys">, note: CreditNoteRow): Promise<StripeCreditNoteState> {
    const db = this.host.db;
    const ring = await dataKeyring(this.host.config);
    const requestId = `outbox:credit_note:${note.id}`;
    const [invoice] = await db.select().from(invoices).where(eq(invoices.id, note.invoiceId));
    if (!invoice?.stripeInvoiceRef) throw new StripeCallError("creditNote", false, "invoice_not_on_stripe", null);
    // Only ours are ever pending; the constraint keeps reason and memo on them (credit_notes_source_ck).
    if (note.source !== "api" || !note.reason || !note.memo) throw new StripeCallError("creditNote", false, "not_ours", null);
    // Past Stripe's 24-hour key memory a retry could credit twice: billing staff look instead.
    if (clock.now() - note.createdAt > REFUND_RETRY_WINDOW_MS) throw new StripeCallError("creditNote", false, "needs_review", null);
    const stripeInvoiceId = await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef);
    const gateway = this.outbox.gateway(work, [], requestId);
    const made = await gateway.createCreditNote({
      creditNoteId: note.id,
      invoiceId: invoice.id,
      stripeInvoiceId,
      amount: note.amount,
      ...(note.lines && byLine(invoice) ? { lines: await stripeLinesOf(gateway, stripeInvoiceId, note.lines) } : {}),
      settlement: note.settlement,
      reason: note.reason!,
      memo: creditNoteMemos[note.memo!],
    });
    const sealed = await sealReference(ring, creditNoteCol, note.id, made.id);
    const now = clock.now();
    const statements: Statement[] = [
      db.run(sql`UPDATE ${creditNotes} SET status = 'issued', stripe_credit_note_ref = ${sealed.ref}, stripe_credit_note_index = ${sealed.index}, error_code = NULL, updated_at = ${now}
        WHERE id = ${note.id} AND status = 'pending' AND stripe_credit_note_index IS NULL`),
    ];
    const audits: { action: string; targetIds: string[]; details: Record<string, unknown> }[] = [
      { action: "credit_note.issued", targetIds: [note.id, invoice.id], details: { amount: note.amount, settlement: note.settlement, prePaymentAmount: made.prePaymentAmount, postPaymentAmount: made.postPaymentAmount } },
    ];
    // The refund a credit note makes is a refund of the invoice's payment: recorded as ours (§8.7), settled by its events.
    for (const r of made.refunds) {
      const state = await gateway.readRefund(r.id);
      const status = state.status === "succeeded" ? "succeeded" : state.status === "failed" || state.status === "canceled" ? "failed" : "pending";
      const refundId = newId("rf");
      const sealedRefund = await sealReference(ring, refundCol, refundId, r.id);
      statements.push(
        db.run(sql`INSERT INTO ${refunds} (id, office_id, invoice_id, amount, reason, status, stripe_refund_ref, stripe_refund_index, error_code, requested_by, created_at, updated_at)
          SELECT ${refundId}, ${note.officeId}, ${invoice.id}, ${r.amount}, 'billing_error', ${status}, ${sealedRefund.ref}, ${sealedRefund.index}, ${status === "failed" ? (state.failureReason ?? "refund_failed") : null}, ${note.requestedBy}, ${now}, ${now}
          WHERE NOT EXISTS (SELECT 1 FROM ${refunds} WHERE stripe_refund_index = ${sealedRefund.index})`),
      );
      audits.push({ action: "refund.recorded_from_credit_note", targetIds: [refundId, note.id, invoice.id], details: { amount: r.amount, stripeStatus: state.status } });
    }
    if (made.refunds.length > 0) statements.push(refundedTotal(db, invoice.id, now));
    const settles = note.settlement === "none" && (invoice.status === "open" || invoice.status === "uncollectible");
    if (settles) statements.push(paidByCredit(db, invoice.id, now));
    const rows = await this.host.commit(
      "credit_note.record",
      () => statements,
      audits.map((a) => ({ ...OUTBOX_ACTOR, requestId, action: a.action, outcome: "succeeded" as const, targetIds: a.targetIds, details: a.details })),
      () => [db.select({ status: invoices.status, paymentFailedAt: invoices.paymentFailedAt }).from(invoices).where(eq(invoices.id, invoice.id))],
    );
    const after = (rows.at(-1) as { status: string }[])[0];
    if (settles && after?.status === "paid") {
      await this.host.commit("invoice.paid", () => [], [{ ...OUTBOX_ACTOR, requestId, action: "invoice.paid", outcome: "succeeded", targetIds: [invoice.id], details: { source: "credit_note", creditNoteId: note.id, amountPaid: 0 } }]);
      const full = await this.outbox.readOffice();
      if (full) await this.outbox.events.officeStatus({ office: full.office } as Work, "settled", requestId, { invoiceId: invoice.id, creditNoteId: note.id });
    }
    return made;
  }

  /**
   * The reconciliation's catch-up (§8.10): Stripe says more was credited before payment than our
   * credit notes account for (a Dashboard credit note whose event never reached us): its credit
   * notes are listed and each one we never stored (and that names none of ours) is recorded as
   * Stripe's. True when one was recorded.
   */
  async catchUp(work: Work, invoiceId: string, current: Pick<StripeInvoiceState, "id" | "prePaymentCredited">, requestId: string): Promise<boolean> {
    const db = this.host.db;
    const [row] = await db
      .select({ credited: sql<number>`COALESCE(SUM(${creditNotes.amount}), 0)` })
      .from(creditNotes)
      .where(sql`${creditNotes.invoiceId} = ${invoiceId} AND ${creditNotes.status} = 'issued' AND ${creditNotes.settlement} = 'none'`);
    if (current.prePaymentCredited <= (row?.credited ?? 0)) return false;
    const ring = await dataKeyring(this.host.config);
    let recorded = false;
    for (const note of await this.outbox.gateway(work, [], requestId).creditNotesOfInvoice(current.id)) {
      const [known] = await db.select({ id: creditNotes.id }).from(creditNotes).where(indexIn(creditNotes.stripeCreditNoteIndex, await lookupIndexes(ring, "stripe_credit_note", note.id)));
      if (known) continue;
      const ref = note.metadata.credit_note_ref;
      if (ref && (await db.select({ id: creditNotes.id }).from(creditNotes).where(sql`${creditNotes.id} = ${ref} AND ${creditNotes.officeId} = ${this.host.officeId}`)).length > 0) continue;
      recorded = (await recordFromStripe(this.outbox, work, note, requestId, (id, now) => paidByCredit(db, id, now))) || recorded;
    }
    return recorded;
  }

  /**
   * `credit_note.created`, `credit_note.updated`, `credit_note.voided` (§8.10): the credit note is
   * read from Stripe and bound by the keyed index of its Stripe id; a void one leaves `credited`.
   */
  async process(work: Work, event: EventRow): Promise<void> {
    const payload = event.payload as StripeEvent;
    const obj = payload.data.object;
    const db = this.host.db;
    const id = typeof obj.id === "string" ? obj.id : null;
    if (!id) return this.outbox.events.finishEvent(event, "ignored", { error: "credit_note_unknown" });
    const ring = await dataKeyring(this.host.config);
    const indexes = await lookupIndexes(ring, "stripe_credit_note", id);
    const [ours] = await db.select().from(creditNotes).where(sql`${indexIn(creditNotes.stripeCreditNoteIndex, indexes)} AND ${creditNotes.officeId} = ${this.host.officeId}`);
    const meta = (obj.metadata && typeof obj.metadata === "object" ? obj.metadata : {}) as Record<string, unknown>;
    // Never stored: made outside this API (the Dashboard), recorded when its invoice is ours.
    if (!ours) return recordExternalCreditNote(this.outbox, work, event, id, meta, (invoiceId, now) => paidByCredit(db, invoiceId, now));
    if (meta.office_ref !== undefined && meta.office_ref !== this.host.officeId) return this.outbox.events.rejectEvent(event, "office_ref");
    if (meta.invoice_ref !== undefined && meta.invoice_ref !== ours.invoiceId) return this.outbox.events.rejectEvent(event, "invoice_ref");
    if (meta.credit_note_ref !== undefined && meta.credit_note_ref !== ours.id) return this.outbox.events.rejectEvent(event, "credit_note_ref");
    let current: StripeCreditNoteState;
    try {
      current = await this.outbox.gateway(work, [], `webhook:${event.id}`).readCreditNote(id);
    } catch (err) {
      if (err instanceof StripeCallError && !err.retryable) return this.outbox.events.finishEvent(event, "ignored", { error: "unknown_at_stripe", code: err.code });
      throw err;
    }
    const now = clock.now();
    if (current.status === "void" && ours.status !== "void") {
      await this.host.commit(
        "webhook.process",
        () => [
          db.run(sql`UPDATE ${creditNotes} SET status = 'void', updated_at = ${now} WHERE id = ${ours.id} AND status <> 'void'`),
          db.run(sql`UPDATE ${webhookEvents} SET status = 'processed', attempts = attempts + 1, processed_at = ${now}, error = NULL WHERE id = ${event.id}`),
        ],
        [
          { ...WEBHOOK_ACTOR, requestId: `webhook:${event.id}`, action: `webhook.${event.type}`, outcome: "succeeded", targetIds: [event.id, ours.id, ours.invoiceId], details: { creditNoteId: ours.id, stripeStatus: current.status } },
          { ...WEBHOOK_ACTOR, requestId: `webhook:${event.id}`, action: "credit_note.voided", outcome: "succeeded", targetIds: [ours.id, ours.invoiceId], details: { amount: ours.amount } },
        ],
      );
      return;
    }
    // Created or updated: ours already says what Stripe says (issued); nothing moves.
    return this.outbox.events.finishEvent(event, "processed", { creditNoteId: ours.id, stripeStatus: current.status, unchanged: true }, [], [ours.id, ours.invoiceId]);
  }
}
