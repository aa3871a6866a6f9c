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
// `amount` makes a credit note of one line of that amount. `lines` (docs.stripe.com/api/credit_notes/create,
// CreditNoteCreateParams.Line of the pinned SDK) credits the invoice by line: `type:
// invoice_line_item` with the invoice's `invoice_line_item` id and an `amount` (or a `quantity` of
// its unit amount), never more than that line has left (its amount less what earlier credit notes
// took from it); `type: custom_line_item` with `unit_amount` × `quantity` and a `description`, not
// valid on an automatic-tax invoice ("`custom_line_item` is not valid when the invoice is set up
// with `automatic_tax[enabled]=true`"). The credit note's amount is the lines' sum. The tax Stripe
// credits on the lines of a taxed invoice is not emulated (such a request is refused as
// `emulator_unsupported_parameter`).
// Creating one emits `credit_note.created` (and the refund's events); voiding one emits
// `credit_note.voided` and gives the open invoice's amount back.
import { HASH, LEAF, NOT, PAGINATION, clone, expansions, invalid, invalidParam, listOf, mergeMetadata, missing, newId, notEmulated, notFound, page, toInt } from "./common.mjs";

/** CreditNoteCreateParams of the pinned SDK (`refunds`, `shipping_cost` not emulated). */
const CREATE = {
  amount: LEAF,
  credit_amount: LEAF,
  effective_at: LEAF,
  email_type: LEAF,
  expand: [LEAF],
  invoice: LEAF,
  lines: [{ amount: LEAF, description: LEAF, invoice_line_item: LEAF, quantity: LEAF, tax_amounts: NOT, tax_rates: NOT, type: LEAF, unit_amount: LEAF, unit_amount_decimal: NOT }],
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

  /** What earlier credit notes (not void) took from an invoice line. */
  const creditedOnLine = (inv, lineId) =>
    notesOf(inv.id).reduce((a, n) => a + n.lines.data.filter((l) => l.invoice_line_item === lineId).reduce((b, l) => b + l.amount, 0), 0);

  /** `lines` of a credit note (see the head of this file), validated: the credit note's lines. */
  function creditLines(inv, list) {
    const items = Array.isArray(list) ? list : [list];
    if (items.length === 0) throw missing("lines");
    const custom = items.findIndex((l) => l?.type === "custom_line_item");
    if (inv.automatic_tax?.enabled && custom >= 0) throw invalidParam("`custom_line_item` is not valid when the invoice is set up with `automatic_tax[enabled]=true`.", `lines[${custom}][type]`);
    const taxed = inv.automatic_tax?.enabled || (inv.default_tax_rates ?? []).length > 0 || inv.lines.data.some((l) => (l.taxes ?? []).length > 0);
    if (taxed) throw notEmulated("lines"); // the tax Stripe credits with each line is not emulated
    const taken = new Map();
    return items.map((l, i) => {
      const param = (f) => `lines[${i}][${f}]`;
      if (!l || typeof l !== "object" || !l.type) throw missing(param("type"));
      const quantity = toInt(l.quantity, param("quantity"));
      if (quantity !== undefined && quantity < 0) throw invalidParam("This value must be greater than or equal to 0.", param("quantity"));
      const base = { id: newId("cnli"), object: "credit_note_line_item", discount_amount: 0, discount_amounts: [], livemode: false, pretax_credit_amounts: [], tax_rates: [], taxes: [] };
      if (l.type === "invoice_line_item") {
        if (!l.invoice_line_item) throw missing(param("invoice_line_item"));
        if (l.unit_amount !== undefined || l.description !== undefined) throw invalidParam("`unit_amount` and `description` are only valid when `type` is `custom_line_item`.", param(l.unit_amount !== undefined ? "unit_amount" : "description"));
        const line = inv.lines.data.find((x) => x.id === l.invoice_line_item);
        if (!line) throw invalidParam(`No such invoice line item: '${l.invoice_line_item}' on invoice ${inv.id}`, param("invoice_line_item"), { code: "resource_missing" });
        const unit = line.quantity ? Math.round(line.amount / line.quantity) : 0;
        const amount = l.amount !== undefined ? toInt(l.amount, param("amount")) : quantity !== undefined ? quantity * unit : undefined;
        if (amount === undefined) throw missing(param("amount"));
        if (amount < 0) throw invalidParam("This value must be greater than or equal to 0.", param("amount"));
        const left = line.amount - creditedOnLine(inv, line.id) - (taken.get(line.id) ?? 0);
        if (amount > left) throw invalidParam(`The amount to credit (${amount}) exceeds what is left of invoice line item ${line.id} (${left}).`, param("amount"), { code: "credit_note_amount_too_large" });
        taken.set(line.id, (taken.get(line.id) ?? 0) + amount);
        return { ...base, amount, description: line.description, invoice_line_item: line.id, quantity: quantity ?? null, type: "invoice_line_item", unit_amount: null, unit_amount_decimal: null };
      }
      if (l.type === "custom_line_item") {
        if (l.invoice_line_item !== undefined || l.amount !== undefined) throw invalidParam("`invoice_line_item` and `amount` are only valid when `type` is `invoice_line_item`.", param(l.amount !== undefined ? "amount" : "invoice_line_item"));
        const unitAmount = toInt(l.unit_amount, param("unit_amount"));
        if (unitAmount === undefined) throw missing(param("unit_amount"));
        if (!l.description) throw missing(param("description"));
        const q = quantity ?? 1;
        return { ...base, amount: unitAmount * q, description: String(l.description), quantity: q, type: "custom_line_item", unit_amount: unitAmount, unit_amount_decimal: String(unitAmount) };
      }
      throw invalidParam("Invalid type: must be one of invoice_line_item or custom_line_item", param("type"));
    });
  }

  route("POST", "/v1/credit_notes", CREATE, (p, _params, ctx) => {
    expansions(p);
    if (!p.invoice) throw missing("invoice");
    const inv = state.invoices.get(p.invoice);
    if (!inv) throw notFound("invoice", p.invoice, "invoice");
    if (p.amount === undefined && p.lines === undefined) throw invalidParam("One of `amount`, `lines`, or `shipping_cost` must be provided.", "amount", { code: "parameter_missing" });
    const noteLines = p.lines === undefined ? null : creditLines(inv, p.lines);
    const amount = noteLines ? noteLines.reduce((a, l) => a + l.amount, 0) : toInt(p.amount, "amount");
    if (noteLines && p.amount !== undefined && toInt(p.amount, "amount") !== amount) {
      throw invalidParam(`The credit note amount (${p.amount}) must equal the sum of its lines (${amount}).`, "amount");
    }
    if (amount <= 0) throw invalidParam("This value must be greater than or equal to 1.", noteLines ? "lines" : "amount");
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
        noteLines ?? [{ id: newId("cnli"), object: "credit_note_line_item", amount, description: null, discount_amount: 0, discount_amounts: [], invoice_line_item: null, livemode: false, pretax_credit_amounts: [], quantity: 1, tax_rates: [], taxes: [], type: "custom_line_item", unit_amount: amount, unit_amount_decimal: String(amount) }],
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
