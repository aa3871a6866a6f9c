import { and, eq, sql } from "drizzle-orm";
import { creditNotes } from "../db/credit-notes";
import { invoices } from "../db/invoices";
import { webhookEvents } from "../db/webhook-events";
import { lookupIndexes } from "../security/crypto";
import { dataKeyring, indexIn, sealReference } from "../security/data-keys";
import { newId } from "../security/request-id";
import { StripeCallError, type StripeCreditNoteState } from "../stripe/gateway";
import * as clock from "../clock";

import type { StripeOutbox } from "./stripe-sync";
import { creditNoteCol, WEBHOOK_ACTOR, type EventRow, type Work } from "./stripe-work";
import { creditNoteReasons } from "../db/credit-notes";

/** Where Stripe put a credit note's amount (docs/payment-plan.md §8.10): a refund, the customer's balance, else the amount due. */
export function settlementOf(n: Pick<StripeCreditNoteState, "refunds" | "balanceCredited">): "none" | "refund" | "customer_balance" {
  return n.refunds.length > 0 ? "refund" : n.balanceCredited ? "customer_balance" : "none";
}

/**
 * A `credit_note.*` event for a Stripe id we never stored (§8.10, "Credit notes made outside this
 * API"): read from Stripe, recorded as ours with Stripe's amounts (`source: stripe`) when its
 * invoice is one of this office's by the keyed index of the Stripe invoice id we stored; else
 * ignored and logged. One naming our own credit note in its metadata is left to the outbox.
 */
export async function recordExternalCreditNote(
  outbox: StripeOutbox,
  work: Work,
  event: EventRow,
  stripeCreditNoteId: string,
  metadata: Record<string, unknown>,
  paidByCredit: (invoiceId: string, now: number) => ReturnType<StripeOutbox["host"]["db"]["run"]>,
): Promise<void> {
  const host = outbox.host;
  const db = host.db;
  const events = outbox.events;
  const unknown = () => {
    console.error(JSON.stringify({ level: "error", msg: "stripe credit note on no invoice of ours: billing staff look", officeId: host.officeId, eventId: event.id }));
    return events.finishEvent(event, "ignored", { error: "credit_note_unknown" });
  };
  // Ours, made by the outbox whose answer was lost: its own keyed create records it, never this.
  if (typeof metadata.credit_note_ref === "string") {
    const [mine] = await db.select({ id: creditNotes.id }).from(creditNotes).where(and(eq(creditNotes.id, metadata.credit_note_ref), eq(creditNotes.officeId, host.officeId)));
    if (mine) return events.finishEvent(event, "ignored", { error: "credit_note_pending_ours", creditNoteId: mine.id }, [], [mine.id]);
  }
  let current: StripeCreditNoteState;
  try {
    current = await outbox.gateway(work, [], `webhook:${event.id}`).readCreditNote(stripeCreditNoteId);
  } catch (err) {
    if (err instanceof StripeCallError && !err.retryable) return events.finishEvent(event, "ignored", { error: "unknown_at_stripe", code: err.code });
    throw err;
  }
  const recorded = await recordFromStripe(outbox, work, current, `webhook:${event.id}`, paidByCredit, {
    statements: [db.run(sql`UPDATE ${webhookEvents} SET status = 'processed', attempts = attempts + 1, processed_at = ${clock.now()}, error = NULL WHERE id = ${event.id}`)],
    audit: (id, invoiceId) => ({ ...WEBHOOK_ACTOR, requestId: `webhook:${event.id}`, action: `webhook.${event.type}`, outcome: "succeeded" as const, targetIds: [event.id, id, invoiceId], details: { creditNoteId: id, stripeStatus: current.status, source: "stripe" } }),
  });
  if (!recorded) return unknown();
}

type Statement = ReturnType<StripeOutbox["host"]["db"]["run"]>;

/**
 * Records a Stripe credit note we never stored as ours (`source: stripe`, §8.10) when its invoice
 * is one of this office's by the keyed index of the Stripe invoice id we stored; false when it is
 * not. With the event's own statements and audit (webhook), or none (the reconciliation).
 */
export async function recordFromStripe(
  outbox: StripeOutbox,
  work: Work,
  current: StripeCreditNoteState,
  requestId: string,
  paidByCredit: (invoiceId: string, now: number) => Statement,
  extra: { statements: Statement[]; audit?: (id: string, invoiceId: string) => Parameters<StripeOutbox["host"]["commit"]>[2][number] } = { statements: [] },
): Promise<boolean> {
  const host = outbox.host;
  const db = host.db;
  const ring = await dataKeyring(host.config);
  const [invoice] = await db
    .select()
    .from(invoices)
    .where(sql`${indexIn(invoices.stripeInvoiceIndex, await lookupIndexes(ring, "stripe_invoice", current.invoice))} AND ${invoices.officeId} = ${host.officeId}`);
  if (!invoice) return false;
  const id = newId("cn");
  const sealed = await sealReference(ring, creditNoteCol, id, current.id);
  const indexes = await lookupIndexes(ring, "stripe_credit_note", current.id);
  const settlement = settlementOf(current);
  const status = current.status === "void" ? "void" : "issued";
  const reason = (creditNoteReasons as readonly string[]).includes(current.reason ?? "") ? current.reason : null;
  const now = clock.now();
  const settles = status === "issued" && settlement === "none" && (invoice.status === "open" || invoice.status === "uncollectible");
  const rows = (await host.commit(
    "credit_note.from_stripe",
    () => [
      db.run(sql`INSERT INTO ${creditNotes} (id, office_id, invoice_id, amount, lines, reason, memo, settlement, status, source, stripe_credit_note_ref, stripe_credit_note_index, requested_by, updated_at)
        SELECT ${id}, ${host.officeId}, ${invoice.id}, ${current.amount}, NULL, ${reason}, NULL, ${settlement}, ${status}, 'stripe', ${sealed.ref}, ${sealed.index}, ${WEBHOOK_ACTOR.actorSub}, ${now}
        WHERE NOT EXISTS (SELECT 1 FROM ${creditNotes} WHERE ${indexIn(creditNotes.stripeCreditNoteIndex, indexes)})`),
      ...(settles ? [paidByCredit(invoice.id, now)] : []),
      ...extra.statements,
    ],
    [
      ...(extra.audit ? [extra.audit(id, invoice.id)] : []),
      {
        ...WEBHOOK_ACTOR,
        requestId,
        action: "credit_note.recorded_from_stripe",
        outcome: "succeeded",
        targetIds: [id, invoice.id],
        details: { amount: current.amount, settlement, stripeStatus: current.status, prePaymentAmount: current.prePaymentAmount, postPaymentAmount: current.postPaymentAmount },
      },
    ],
    () => [db.select({ status: invoices.status }).from(invoices).where(eq(invoices.id, invoice.id))],
  )) as unknown[];
  const after = (rows.at(-1) as { status: string }[])[0];
  if (settles && after?.status === "paid") {
    await host.commit("invoice.paid", () => [], [{ ...WEBHOOK_ACTOR, requestId, action: "invoice.paid", outcome: "succeeded", targetIds: [invoice.id], details: { source: "credit_note", creditNoteId: id, amountPaid: 0 } }]);
    await outbox.events.officeStatus(work, "settled", requestId, { invoiceId: invoice.id, creditNoteId: id });
  }
  return true;
}
