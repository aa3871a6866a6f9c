import { startOfLocalDay } from "../billing/calendar";
import { sql } from "drizzle-orm";
import { invoices } from "../db/invoices";
import { dataKeyring, openReference, sealReference } from "../security/data-keys";
import { StripeCallError, type Collection, type InvoiceForStripe, type StripeInvoiceState } from "../stripe/gateway";
import { payable } from "../stripe/invoice-tax";
import * as clock from "../clock";
import { storedBasis } from "./invoice-tax";
import type { StripeOutbox } from "./stripe-sync";
import { expectedAmountDue, invoiceCol, OUTBOX_ACTOR, type InvoiceRow, type Work } from "./stripe-work";

// The outbox's push of an invoice to Stripe (docs/payment-plan.md §8.3).

function invoiceForStripe(work: Work, invoice: InvoiceRow, collection?: Collection): InvoiceForStripe {
  const lines = work.lines.filter((l) => l.invoiceId === invoice.id);
  return {
    id: invoice.id,
    currency: invoice.currency,
    ...(collection ? { collection } : {}),
    discount: storedBasis(invoice).mode === "stripe_tax" ? "coupon" : "line", // Stripe Tax takes no negative line (§6.10)
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
 * whatever the patient count (four for a discount under Stripe Tax: its coupon first, §6.10). A resumed push first asks Stripe where the invoice stands.
 */
export async function pushOne(outbox: StripeOutbox, work: Work, invoice: InvoiceRow): Promise<boolean> {
  const requestId = `outbox:push:${invoice.id}`;
  const ring = await dataKeyring(outbox.host.config);
  const payload = invoiceForStripe(work, invoice, await outbox.paymentMethods.collectionOf(work, invoice));
  // Tax (§11): fixed with the collection method; a push held for the office's address waits for a profile change.
  const basis = storedBasis(invoice);
  const gate = outbox.taxes.gate(work.office, invoice, basis);
  if (gate === "waiting") return false;
  if (gate === "hold") {
    await outbox.taxes.hold(invoice, "tax_address_required", work.office.profileVersion);
    return false;
  }
  const periodDates = [invoice.periodStart, invoice.periodEnd];
  const customerId = await outbox.customerId(work, requestId);
  const gateway = outbox.gateway(work, periodDates, requestId);
  gateway.invoicePayloads(customerId, payload); // nothing is sent unless both payloads pass their schemas
  let state: StripeInvoiceState | null = null;
  let stripeId: string;
  if (invoice.stripeInvoiceRef) {
    stripeId = await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef);
    state = await gateway.readInvoice(stripeId);
  } else {
    const tax = await outbox.taxes.stripeTax(work, basis, gateway);
    if (tax) payload.tax = tax;
    await gateway.createCoupon(payload); // a discount under Stripe Tax (§6.10): its coupon before the invoice names it
    const draft = await gateway.createDraft(customerId, payload);
    stripeId = draft.id;
    // An invoice adopted after a long gap (gateway.createDraft) continues from where Stripe has it.
    if (draft.adopted) state = draft;
    const sealed = await sealReference(ring, invoiceCol, invoice.id, stripeId);
    const db = outbox.host.db;
    await outbox.host.commit(
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
  let final: StripeInvoiceState;
  try {
    // After a hold, Stripe kept its refusal under the first key: the profile version names the new request.
    final = !state || state.status === "draft" ? await gateway.finalize(stripeId, invoice.id, invoice.stripeHeldProfile !== null ? work.office.profileVersion : undefined) : state;
  } catch (err) {
    // Stripe Tax could not place the customer (§11.7): held until the office's profile changes.
    if (err instanceof StripeCallError && err.code === "customer_tax_location_invalid") {
      await outbox.taxes.hold(invoice, err.code, work.office.profileVersion);
      return false;
    }
    throw err;
  }
  const db = outbox.host.db;
  const documents = await outbox.sealDocuments(invoice.id, final);
  const tax = outbox.taxes.readBack(invoice, basis, final);
  await outbox.host.commit(
    "stripe.push",
    () => [
      db.run(sql`UPDATE ${invoices} SET stripe_state = 'finalized', stripe_error = NULL, stripe_held_profile = NULL, due_at = ${final.dueAt}, updated_at = ${clock.now()} WHERE id = ${invoice.id} AND stripe_state IN ('none','draft_created','failed')`),
      ...(tax ? [db.run(sql`UPDATE ${invoices} SET tax_amount = ${tax.taxAmount}, total_including_tax = ${tax.totalIncludingTax} WHERE id = ${invoice.id}`)] : []),
      ...(documents ? [db.run(sql`UPDATE ${invoices} SET stripe_number = ${final.number}, stripe_documents_ref = ${documents} WHERE id = ${invoice.id}`)] : []),
    ],
    [
      {
        ...OUTBOX_ACTOR,
        requestId,
        action: "stripe.invoice_pushed",
        outcome: "succeeded",
        targetIds: [invoice.id],
        details: {
          total: invoice.total,
          lines: payload.lines.length,
          collection: payload.collection?.method,
          ...(basis.mode !== "none" ? { taxMode: basis.mode, taxAmount: tax?.taxAmount ?? null } : {}),
          stripeStatus: final.status,
          stripeAmountDue: final.amountDue,
          stripeCalls: gateway.calls,
        },
      },
    ],
  );
  const owed = expectedAmountDue(payable({ total: invoice.total, totalIncludingTax: tax?.totalIncludingTax ?? null }), final);
  if (final.amountDue !== owed && final.status !== "void") {
    console.error(JSON.stringify({ level: "error", msg: "stripe invoice total differs from ours", officeId: outbox.host.officeId, invoiceId: invoice.id, ours: owed, stripe: final.amountDue }));
  }
  return true;
}
