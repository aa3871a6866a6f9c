import type Stripe from "stripe";

// What the gateway reads of Stripe's objects (the pinned SDK's types): payment methods, payment intents, refunds, portal refusals.

/** The card of a customer's default payment method, as Stripe reports it (office payment data, not PHI). */
export type PaymentMethodState = { status: "none" } | { status: "on_file"; brand: string; last4: string; expMonth: number; expYear: number };

/** The state of a customer's default payment method for invoices (`invoice_settings.default_payment_method`, expanded). */
export function paymentMethodState(customer: Stripe.Customer): PaymentMethodState {
  const pm = customer.invoice_settings?.default_payment_method;
  if (!pm || typeof pm === "string") return { status: "none" };
  const card: Stripe.PaymentMethod.Card | undefined = pm.card;
  return card ? { status: "on_file", brand: card.brand, last4: card.last4, expMonth: card.exp_month, expYear: card.exp_year } : { status: "on_file", brand: pm.type, last4: "", expMonth: 0, expYear: 0 };
}

/** The payment intent of an invoice's successful payment, from its `payments` (read with `expand: ["payments"]`). */
export function paymentIntentOf(invoice: Stripe.Invoice): string | null {
  for (const p of invoice.payments?.data ?? []) {
    if (p.status !== "paid") continue;
    const pi = p.payment.payment_intent;
    if (pi) return typeof pi === "string" ? pi : pi.id;
  }
  return null;
}

/** The payment intent of a charge (as an event carries it), or null. */
export function paymentIntentOfCharge(charge: Record<string, unknown>): string | null {
  const pi = (charge as Partial<Pick<Stripe.Charge, "payment_intent">>).payment_intent;
  return typeof pi === "string" ? pi : (pi?.id ?? null);
}

/** The code a portal session refused for want of a portal configuration is given (Stripe gives none). */
export const PORTAL_NOT_CONFIGURED = "billing_portal_not_configured";

/**
 * Stripe's refusal of a portal session when the account has no default portal configuration (the
 * customer portal settings were never saved in the Dashboard) and the request names none: 400
 * `invalid_request_error`, "No configuration provided and your … default configuration has not
 * been created. …".
 */
export function isPortalNotConfigured(err: unknown): boolean {
  const e = err as { statusCode?: number; message?: unknown };
  return e?.statusCode === 400 && typeof e.message === "string" && /default configuration has not been created/i.test(e.message);
}

/** What the project reads of a Stripe refund (Stripe.Refund of the pinned version). */
export type StripeRefundState = {
  id: string;
  status: string;
  amount: number;
  paymentIntent: string | null;
  charge: string | null;
  reason: string | null;
  failureReason: string | null;
  metadata: Record<string, string>;
};

export function refundState(r: Stripe.Refund): StripeRefundState {
  const ref = (v: string | { id: string } | null) => (typeof v === "string" ? v : (v?.id ?? null));
  return { id: r.id, status: r.status ?? "pending", amount: r.amount, paymentIntent: ref(r.payment_intent), charge: ref(r.charge), reason: r.reason, failureReason: r.failure_reason ?? null, metadata: r.metadata ?? {} };
}

/** What the project reads of a Stripe credit note (Stripe.CreditNote of the pinned version). */
export type StripeCreditNoteState = {
  id: string;
  status: "issued" | "void";
  amount: number;
  invoice: string;
  prePaymentAmount: number;
  postPaymentAmount: number;
  /** The refunds the credit note made (`refund_amount`), with their amounts. */
  refunds: { id: string; amount: number }[];
  metadata: Record<string, string>;
  /** Stripe's reason (null: none given). */
  reason: Stripe.CreditNote.Reason | null;
  /** Whether it credited the customer's balance (`customer_balance_transaction`). */
  balanceCredited: boolean;
};

export function creditNoteState(n: Stripe.CreditNote): StripeCreditNoteState {
  return {
    id: n.id,
    status: n.status,
    amount: n.amount,
    invoice: typeof n.invoice === "string" ? n.invoice : n.invoice.id,
    prePaymentAmount: n.pre_payment_amount,
    postPaymentAmount: n.post_payment_amount,
    refunds: (n.refunds ?? []).map((r) => ({ id: typeof r.refund === "string" ? r.refund : r.refund.id, amount: r.amount_refunded })),
    metadata: n.metadata ?? {},
    reason: n.reason ?? null,
    balanceCredited: n.customer_balance_transaction !== null && n.customer_balance_transaction !== undefined,
  };
}
