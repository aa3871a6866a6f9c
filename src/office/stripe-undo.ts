import { eq, sql } from "drizzle-orm";
import { invoices } from "../db/invoices";
import { refunds } from "../db/refunds";
import { dataKeyring, openReference, sealReference } from "../security/data-keys";
import { StripeCallError, type StripeInvoiceState } from "../stripe/gateway";
import * as clock from "../clock";
import type { StripeOutbox } from "./stripe-sync";
import { invoiceCol, OUTBOX_ACTOR, refundCol, refundedTotal, REFUND_RETRY_WINDOW_MS, type InvoiceRow, type RefundRow, type Work } from "./stripe-work";

// The outbox's undoing work on Stripe: voiding an invoice voided here, and making a refund (docs/payment-plan.md §8).

/** Voids the Stripe copy of an invoice voided here; a draft never finalized is simply abandoned. */
export async function voidOne(outbox: StripeOutbox, work: Work, invoice: InvoiceRow): Promise<boolean> {
  const db = outbox.host.db;
  const requestId = `outbox:void:${invoice.id}`;
  let next: "voided" | "abandoned" = "abandoned";
  if (invoice.stripeInvoiceRef) {
    // Whatever we recorded, Stripe's own state decides: a finalize may have reached Stripe unrecorded.
    const ring = await dataKeyring(outbox.host.config);
    const stripeId = await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef);
    const gateway = outbox.gateway(work, [invoice.periodStart, invoice.periodEnd], requestId);
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
  await outbox.host.commit(
    "stripe.void",
    () => [db.run(sql`UPDATE ${invoices} SET stripe_state = ${next}, stripe_error = NULL, updated_at = ${clock.now()} WHERE id = ${invoice.id} AND stripe_state IN ('draft_created','finalized')`)],
    [{ ...OUTBOX_ACTOR, requestId, action: next === "voided" ? "stripe.invoice_voided" : "stripe.draft_abandoned", outcome: "succeeded", targetIds: [invoice.id] }],
  );
  return next === "voided";
}

/** Makes a pending refund on Stripe against the invoice's payment, then records it. */
export async function refundOne(outbox: StripeOutbox, work: Pick<Work, "office" | "patientKeys">, refund: RefundRow, known?: StripeInvoiceState): Promise<{ stripeStatus: string }> {
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
