// Credit notes: POST /v1/credit_notes, GET /v1/credit_notes/:id, GET /v1/credit_notes (by
// invoice or customer), POST /v1/credit_notes/:id/void.
//
// Stripe (docs.stripe.com/api/credit_notes/create, pinned 2026-02-25.clover; Dashboard guide
// docs.stripe.com/invoicing/dashboard/credit-notes): a credit note adjusts a finalized (`open` or
// `paid`) invoice. It first reduces the invoice's `amount_remaining` (and `amount_due`), never
// below 0 — its `pre_payment_amount`; an open invoice reduced to 0 is marked `paid`. The excess
// (`post_payment_amount`) must equal `refund_amount` (a refund of the invoice's charge) +
// `credit_amount` (a credit to the customer's balance, applied to the next invoice finalized) +
// `out_of_band_amount`. The credit notes of an invoice never total more than the invoice's total.
// Only `amount` (no `lines`) is emulated: a credit note is one line of that amount.
// Creating one emits `credit_note.created` (and the refund's events); voiding one emits
// `credit_note.voided` and gives the open invoice's amount back.
import { HASH, LEAF, NOT, PAGINATION, clone, expansions, invalid, invalidParam, listOf, mergeMetadata, missing, newId, notFound, page, toInt } from "./common.mjs";

/** CreditNoteCreateParams of the pinned SDK (`lines`, `refunds`, `shipping_cost` not emulated). */
const CREATE = {
  amount: LEAF,
  credit_amount: LEAF,
  effective_at: LEAF,
  email_type: LEAF,
  expand: [LEAF],
  invoice: LEAF,
  lines: NOT,
  memo: LEAF,
  metadata: HASH,
  out_of_band_amount: LEAF,
  reason: LEAF,
  refund_amount: LEAF,
  refunds: NOT,
  shipping_cost: NOT,
};
/** CreditNoteListParams of the pinned SDK. */
const LIST = { created: NOT, customer: LEAF, customer_account: NOT, expand: [LEAF], invoice: LEAF, ...PAGINATION };
export const CREDIT_NOTE_REASONS = ["duplicate", "fraudulent", "order_change", "product_unsatisfactory"];

export function registerCreditNotes(app) {
  const { route, state, clock, emit } = app;

  const getNote = (id) => {
    const n = state.creditNotes.get(id);
    if (!n) throw notFound("credit_note", id);
    return n;
  };
  const notesOf = (invoiceId) => [...state.creditNotes.values()].filter((n) => n.invoice === invoiceId && n.status !== "void");

  /** The charge that paid an invoice (its paid invoice payment's payment intent). */
  function chargeOf(inv) {
    const paid = (inv.payments?.data ?? []).find((p) => p.status === "paid");
    const chId = paid ? state.paymentIntents.get(paid.payment.payment_intent) : null;
    return chId ? state.charges.get(chId) : null;
  }

  route("POST", "/v1/credit_notes", CREATE, (p, _params, ctx) => {
    expansions(p);
    if (!p.invoice) throw missing("invoice");
    const inv = state.invoices.get(p.invoice);
    if (!inv) throw notFound("invoice", p.invoice, "invoice");
    if (p.amount === undefined) throw invalidParam("One of `amount`, `lines`, or `shipping_cost` must be provided.", "amount", { code: "parameter_missing" });
    const amount = toInt(p.amount, "amount");
    if (amount <= 0) throw invalidParam("This value must be greater than or equal to 1.", "amount");
    const refundAmount = toInt(p.refund_amount, "refund_amount") ?? 0;
    const creditAmount = toInt(p.credit_amount, "credit_amount") ?? 0;
    const outOfBand = toInt(p.out_of_band_amount, "out_of_band_amount") ?? 0;
    for (const [k, v] of [["refund_amount", refundAmount], ["credit_amount", creditAmount], ["out_of_band_amount", outOfBand]]) {
      if (v < 0) throw invalidParam("This value must be greater than or equal to 0.", k);
    }
    if (p.reason !== undefined && !CREDIT_NOTE_REASONS.includes(p.reason)) {
      throw invalidParam(`Invalid reason: must be one of ${CREDIT_NOTE_REASONS.join(", ")}`, "reason");
    }
    if (p.email_type !== undefined && !["credit_note", "none"].includes(p.email_type)) throw invalidParam("Invalid email_type: must be one of credit_note or none", "email_type");
    if (p.memo !== undefined && String(p.memo).length > 5000) throw invalidParam("Invalid string: must be at most 5000 characters", "memo");
    if (inv.status !== "open" && inv.status !== "paid") {
      throw invalid(`You can only create a credit note for an open or paid invoice. This invoice is ${inv.status}.`, { code: "invoice_not_open", param: "invoice" });
    }
    const credited = notesOf(inv.id).reduce((s, n) => s + n.amount, 0);
    if (credited + amount > inv.total) {
      throw invalid(`The credit note amount (${amount}) exceeds the remaining amount of the invoice (${inv.total - credited}).`, { code: "credit_note_amount_too_large", param: "amount" });
    }
    const pre = inv.status === "open" ? Math.min(amount, inv.amount_remaining) : 0;
    const post = amount - pre;
    if (refundAmount + creditAmount + outOfBand !== post) {
      throw invalidParam(
        post === 0
          ? "The sum of refund_amount, credit_amount and out_of_band_amount must be 0 when the credit note does not exceed the amount remaining on the invoice."
          : `The sum of refund_amount, credit_amount and out_of_band_amount (${refundAmount + creditAmount + outOfBand}) must equal the post-payment amount of the credit note (${post}).`,
        refundAmount ? "refund_amount" : creditAmount ? "credit_amount" : "amount",
      );
    }
    let charge = null;
    if (refundAmount > 0) {
      charge = chargeOf(inv);
      if (!charge || charge.status !== "succeeded") throw invalidParam("This invoice has no charge to refund.", "refund_amount");
      if (refundAmount > charge.amount - charge.amount_refunded) {
        throw invalid(`Refund amount (${refundAmount}) is greater than unrefunded amount on charge (${charge.amount - charge.amount_refunded})`, { code: "amount_too_large", param: "refund_amount" });
      }
    }
    // Validated: the effects.
    const customer = state.customers.get(inv.customer);
    const id = newId("cn");
    const number = `${inv.number ?? "CN"}-CN-${String(notesOf(inv.id).length + 1).padStart(2, "0")}`;
    const refunds = [];
    if (charge) {
      const refund = app.refunds.createRefund(charge, refundAmount, {}, ctx);
      refunds.push({ amount_refunded: refundAmount, payment_record_refund: null, refund: refund.id, type: "refund" });
    }
    let balanceTxn = null;
    if (creditAmount > 0 && customer) {
      customer.balance = (customer.balance ?? 0) - creditAmount;
      balanceTxn = newId("cbtxn");
    }
    const t = clock.now();
    const note = {
      id,
      object: "credit_note",
      amount,
      amount_shipping: 0,
      created: t,
      currency: inv.currency,
      customer: inv.customer,
      customer_account: null,
      customer_balance_transaction: balanceTxn,
      discount_amount: 0,
      discount_amounts: [],
      effective_at: toInt(p.effective_at, "effective_at") ?? t,
      invoice: inv.id,
      lines: listOf(
        [{ id: newId("cnli"), object: "credit_note_line_item", amount, description: null, discount_amount: 0, discount_amounts: [], invoice_line_item: null, livemode: false, pretax_credit_amounts: [], quantity: 1, tax_rates: [], taxes: [], type: "custom_line_item", unit_amount: amount, unit_amount_decimal: String(amount) }],
        `/v1/credit_notes/${id}/lines`,
      ),
      livemode: false,
      memo: p.memo ?? null,
      metadata: mergeMetadata({}, p.metadata),
      number,
      out_of_band_amount: outOfBand || null,
      pdf: `${app.base.url}/credit_note/${id}/pdf`,
      post_payment_amount: post,
      pre_payment_amount: pre,
      pretax_credit_amounts: [],
      reason: p.reason ?? null,
      refunds,
      shipping_cost: null,
      status: "issued",
      subtotal: amount,
      subtotal_excluding_tax: amount,
      total: amount,
      total_excluding_tax: amount,
      total_taxes: [],
      type: pre > 0 && post > 0 ? "mixed" : pre > 0 ? "pre_payment" : "post_payment",
      voided_at: null,
    };
    state.creditNotes.set(id, note);
    if (pre > 0) {
      inv.pre_payment_credit_notes_amount += pre;
      inv.amount_due -= pre;
      inv.amount_remaining -= pre;
    }
    if (post > 0) inv.post_payment_credit_notes_amount += post;
    app.changed();
    emit("credit_note.created", clone(note), ctx);
    // An open invoice whose balance a credit note reduces to 0 is paid (Stripe's Dashboard guide).
    if (inv.status === "open" && inv.amount_remaining === 0) {
      app.invoices.cancelAttempt(inv);
      app.invoices.markPaid(inv, ctx);
    } else if (pre > 0) emit("invoice.updated", app.invoices.publicInvoice(inv), ctx);
    return clone(note);
  });

  route("GET", "/v1/credit_notes/:id", { expand: [LEAF] }, (p, { id }) => {
    expansions(p);
    return clone(getNote(id));
  });
  route("GET", "/v1/credit_notes", LIST, (p) => {
    expansions(p);
    let items = [...state.creditNotes.values()].sort((a, b) => a.created - b.created);
    if (p.invoice) items = items.filter((n) => n.invoice === p.invoice);
    if (p.customer) items = items.filter((n) => n.customer === p.customer);
    return page(items.map(clone), p, "/v1/credit_notes");
  });
  route("POST", "/v1/credit_notes/:id/void", { expand: [LEAF] }, (p, { id }, ctx) => {
    expansions(p);
    const note = getNote(id);
    if (note.status === "void") throw invalid("This credit note has already been voided.", { code: "credit_note_already_voided" }); // hedge: Stripe refuses a second void
    const inv = state.invoices.get(note.invoice);
    // Stripe voids only a credit note whose invoice is still open (its amount goes back to the amount due).
    if (!inv || inv.status !== "open") throw invalid("You can only void a credit note of an open invoice.", { code: "invoice_not_open" });
    note.status = "void";
    note.voided_at = clock.now();
    inv.pre_payment_credit_notes_amount -= note.pre_payment_amount;
    inv.amount_due += note.pre_payment_amount;
    inv.amount_remaining += note.pre_payment_amount;
    app.changed();
    emit("credit_note.voided", clone(note), ctx);
    return clone(note);
  });

}
