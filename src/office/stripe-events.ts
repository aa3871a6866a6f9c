import { eq, sql } from "drizzle-orm";
import { payableSql } from "../db/billing-sql";
import { payable } from "../stripe/invoice-tax";
import type { Database } from "../db/client";
import { invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { webhookEvents } from "../db/webhook-events";
import { decide, decideFromStripe, eventStatus, suspensionAt, type InvoiceStatus } from "../billing/payments";
import { isRefundEvent, type StripeEvent } from "../stripe/webhooks";
import { dataKeyring, indexIn, openReference } from "../security/data-keys";
import { lookupIndexes } from "../security/crypto";
import * as clock from "../clock";

import { StripeRefunds } from "./stripe-refunds";
import { StripeCreditNotes } from "./stripe-credit-notes";
import { paymentMethodEventTypes } from "./payment-methods";
import type { StripeOutbox } from "./stripe-sync";
import { WEBHOOK_ACTOR, invoiceCol, type EventRow, type InvoiceRow, type OfficeRow, type SyncReport, type Work } from "./stripe-work";

/**
 * Stripe's webhook events applied to one office (docs/payment-plan.md §9), bound only through the
 * Stripe ids we stored, and the office's dunning state they drive. Run by the office's outbox,
 * one item at a time; every outcome is written through the host's audited write.
 */
export class StripeEvents {
  constructor(private readonly outbox: StripeOutbox) {}

  private get host() {
    return this.outbox.host;
  }

  /**
   * The internal invoice a Stripe invoice stands for, found only through the keyed index of the
   * Stripe id we recorded when we pushed it (so never a draft, never an invoice Stripe was not
   * sent). Our references in the event's metadata are hints: when they name another invoice or
   * another office than the stored id does, the event is a `mismatch` and is not applied.
   */
  async bindInvoice(stripeInvoiceId: string | null, hints: { invoiceRef?: unknown[]; officeRef?: unknown }): Promise<{ invoice: InvoiceRow } | { mismatch: string } | null> {
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
  rejectEvent(event: EventRow, field: string) {
    console.error(JSON.stringify({ level: "error", msg: "stripe webhook refused: metadata disagrees with the stored binding", officeId: this.host.officeId, eventId: event.id, type: event.type, field }));
    return this.finishEvent(event, "rejected", { error: "binding_mismatch", reason: "binding_mismatch", field });
  }

  /** Marks a webhook event done, with its audit entry, and any invoice change, in one batch. */
  async finishEvent(event: EventRow, outcome: "processed" | "ignored" | "rejected", details: Record<string, unknown>, statements: ReturnType<Database["run"]>[] = [], targetIds: string[] = []) {
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
  moveInvoice(invoice: InvoiceRow, to: InvoiceStatus, stripe: { amountPaid?: number; paidAt?: number | null }, at: number): ReturnType<Database["run"]>[] {
    const db = this.host.db;
    const now = clock.now();
    switch (to) {
      case "paid":
        return [
          db.run(sql`UPDATE ${invoices} SET status = 'paid', amount_paid = MIN(${payableSql()}, MAX(amount_paid, ${stripe.amountPaid ?? payable(invoice)})), paid_at = ${stripe.paidAt ?? at},
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
  async processEvent(work: Work, event: EventRow, report: SyncReport): Promise<void> {
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
        // Sent by e-mail (§10): a failed try on the hosted page starts no dunning before the due date.
        if (invoice.collectionMethod === "send_invoice" && (invoice.dueAt === null || invoice.dueAt > at)) {
          return this.finishEvent(event, "processed", { invoiceId: invoice.id, paymentFailed: true, dunning: "at_due_date" }, [], [invoice.id]);
        }
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
      // 0..total (ours, including tax once read back: §11.6) — Stripe's own object is read and decides, not the event.
      const reportedPaid = stripe.amountPaid;
      const doubtfulAmount = decision.kind === "apply" && decision.to === "paid" && !(reportedPaid !== undefined && Number.isSafeInteger(reportedPaid) && reportedPaid >= 0 && reportedPaid <= payable(invoice));
      if (decision.kind === "conflict" || doubtfulAmount) {
        const ring = await dataKeyring(this.host.config);
        const current = await this.outbox.gateway(work, [], requestId).readInvoice(await openReference(ring, invoiceCol, invoice.id, stripeRef));
        decision = decideFromStripe(ours, current.status);
        source = "stripe_read";
        stripe = { amountPaid: current.amountPaid, paidAt: null };
        if (doubtfulAmount) console.error(JSON.stringify({ level: "error", msg: "stripe event reported a payment outside the invoice's total; Stripe's invoice read instead", officeId: this.host.officeId, eventId: event.id, invoiceId: invoice.id, total: payable(invoice), reported: obj.amount_paid, stripe: current.amountPaid }));
        if (current.amountPaid > payable(invoice)) console.error(JSON.stringify({ level: "error", msg: "stripe invoice paid more than our total; recorded as our total", officeId: this.host.officeId, invoiceId: invoice.id, total: payable(invoice), stripe: current.amountPaid }));
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
    if (event.type === "charge.refunded" || isRefundEvent(event.type)) return new StripeRefunds(this.outbox, this).process(work, event, report);
    if (event.type.startsWith("credit_note.")) return new StripeCreditNotes(this.outbox).process(work, event);
    if (event.type === "charge.dispute.created" || event.type === "charge.dispute.closed") {
      // A dispute is for billing staff: recorded and logged; the money moves with Stripe's own events.
      const details = { amount: obj.amount, status: obj.status, reason: obj.reason, currency: obj.currency };
      if (event.type === "charge.dispute.created") console.error(JSON.stringify({ level: "error", msg: "payment disputed", officeId: this.host.officeId, eventId: event.id, status: obj.status }));
      return this.finishEvent(event, "processed", details);
    }
    if (event.type === "customer.updated") {
      const fields = Object.keys(((payload.data as { previous_attributes?: Record<string, unknown> }).previous_attributes ?? {}) as Record<string, unknown>);
      // A change of its default payment method (the portal, our own update): Stripe's state is read again.
      if (fields.includes("invoice_settings")) return this.outbox.paymentMethods.processEvent(work, event, (outcome, details, statements = []) => this.finishEvent(event, outcome, { fields, ...details }, statements));
      return this.finishEvent(event, "processed", { fields });
    }
    if ((paymentMethodEventTypes as readonly string[]).includes(event.type)) {
      return this.outbox.paymentMethods.processEvent(work, event, (outcome, details, statements = []) => this.finishEvent(event, outcome, details, statements));
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
  async officeStatus(work: Work, change: "past_due" | "settled", requestId: string, details: Record<string, unknown>) {
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

  /**
   * Invoices sent for payment by e-mail and still open at their due date count as failed payments
   * from that date (docs/payment-plan.md §10): the office goes `past_due`. Then a past-due office
   * whose grace period has run out is suspended. Checked at every run of the outbox.
   */
  async dunning(work: Work) {
    const at = clock.now();
    const overdue = work.dueInvoices.filter((i) => i.dueAt !== null && i.dueAt <= at);
    if (overdue.length > 0) {
      const db = this.host.db;
      const ids = overdue.map((i) => i.id);
      await this.host.commit(
        "invoice.overdue",
        () => [
          db.run(sql`UPDATE ${invoices} SET payment_failed_at = due_at, updated_at = ${at} WHERE office_id = ${this.host.officeId} AND id IN (${sql.join(ids.map((id) => sql`${id}`), sql`, `)})
            AND status = 'open' AND collection_method = 'send_invoice' AND payment_failed_at IS NULL AND due_at <= ${at}`),
        ],
        overdue.map((i) => ({ ...WEBHOOK_ACTOR, requestId: `dunning:${i.id}`, action: "invoice.overdue", outcome: "succeeded" as const, targetIds: [i.id], details: { dueAt: new Date(i.dueAt!).toISOString() } })),
      );
      work.dueInvoices = work.dueInvoices.filter((i) => !ids.includes(i.id));
      await this.officeStatus(work, "past_due", `dunning:${this.host.officeId}`, { invoiceIds: ids, event: "invoice.overdue" });
    }
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
}
