import type Stripe from "stripe";
import { sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { ApiError } from "../errors";
import { sha256Hex } from "../security/crypto";
import { newId } from "../security/request-id";
import { EgressBlockedError, RateLimiterUnavailableError, unwrapBlocked, withStripeClient, type SentRequest } from "./client";
import { directRequestLog, type RequestLogSink } from "./request-log";
import { PacerBusyError, type StripePacer } from "./rate-limiter";
import type { GuardContext } from "./guard";
import { percentageOf, stripeInvoiceTax } from "./invoice-tax";
import { taxRatePayload, taxRateNames, checkoutSetupPayload, defaultPaymentMethodPayload, customerPayload, customerUpdatePayload, portalPayload, refundPayload, type StripeOperation } from "./payloads";
import * as clock from "../clock";
import { stripeAddress } from "./office-address";
import { backoffDelay, isRetryable, LOOKUP_AFTER_MS, StripeCallError, type StripeErrorLike } from "./gateway-errors";
import { isPortalNotConfigured, paymentIntentOf, paymentMethodState, PORTAL_NOT_CONFIGURED, refundState, creditNoteState, type PaymentMethodState, type StripeRefundState, type StripeCreditNoteState } from "./gateway-reads";

import { couponParams, discountOf } from "./invoice-discount";
import { creditNoteRequest, invoiceRequests, type CreditNoteRequest, type InvoiceForStripe } from "./request-payloads";
export * from "./gateway-errors";
export * from "./gateway-reads";
import type { BillingAddress } from "../db/offices";

export type GatewayDeps = {
  config: Pick<Config, "STRIPE_SECRET_KEY" | "STRIPE_API_BASE" | "STRIPE_TIMEOUT_MS">;
  db: Database;
  officeId: string;
  requestId: string | null;
  guard: GuardContext;
  /** Records a blocked request on the office's audit chain (`phi_egress_blocked`). */
  onBlocked: (details: { operation: StripeOperation; kinds: string[]; fields: string[] }) => Promise<void>;
  /** The service-wide Stripe rate limit (rate-limiter.ts): a slot before each request, Stripe's 429s reported back. */
  pacer?: StripePacer;
  /** Where each attempt's row goes; default: written at once (request-log.ts). */
  requestLog?: RequestLogSink;
  /** Attempts per call when Stripe answers 429 `rate_limit` (the pacer's margin was too small); default 6. */
  rateLimitAttempts?: number;
  /** Attempts per call for retryable failures (429, 5xx, timeouts); default 3. */
  attempts?: number;
  /** Base of the exponential backoff between attempts, in ms; default 250. */
  backoffMs?: number;
};

export type OfficeForStripe = { id: string; legalName: string; billingEmail: string; billingAddress?: BillingAddress | null };
export type { Collection, CreditNoteRequest, InvoiceForStripe } from "./request-payloads";

/** What the gateway reports of a Stripe invoice (for reconciliation and refunds). */
export type StripeInvoiceState = {
  id: string;
  status: "draft" | "open" | "paid" | "void" | "uncollectible";
  amountDue: number;
  amountPaid: number;
  amountRemaining: number;
  /** The customer's balance Stripe applied at finalize (negative: a credit, e.g. a credit note's, §8.10). */
  startingBalance: number;
  /** What credit notes took off the amount due while the invoice was open (§8.10). */
  prePaymentCredited: number;
  lineCount: number;
  /** The payment intent of the invoice's successful payment, if any (refunds are made against it). */
  paymentIntent: string | null;
  /** A `send_invoice` invoice's due date (ms), else null. */
  dueAt: number | null;
  /** Stripe's number and documents, once finalized: the hosted invoice page and the PDF (bearer links). */
  number: string | null;
  hostedInvoiceUrl: string | null;
  invoicePdf: string | null;
  /** Stripe's pre-tax total and exclusive tax (§11.6); `taxAmount` null when Stripe gives no figure we read. */
  totalExcludingTax: number | null;
  taxAmount: number | null;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The Stripe gateway: typed operations, each request through the guarded client with a
 * deterministic Idempotency-Key made of internal ids and the step (never personal data), each
 * attempt recorded in the Stripe request log — the record of what crossed the boundary — and
 * retryable failures (429, 5xx, timeouts) retried with backoff and jitter under the rate limit.
 */
export function stripeGateway(deps: GatewayDeps) {
  if (!deps.config.STRIPE_SECRET_KEY) throw new ApiError("SERVICE_UNAVAILABLE", "Stripe is not configured (STRIPE_SECRET_KEY).");
  const secret = deps.config.STRIPE_SECRET_KEY;
  const maxAttempts = deps.attempts ?? 3;
  const backoffMs = deps.backoffMs ?? 250;
  const rateLimitAttempts = Math.max(maxAttempts, deps.rateLimitAttempts ?? 6);
  const requestLog = deps.requestLog ?? directRequestLog(deps.db);
  let calls = 0;

  async function call<T extends { id: string }>(operation: StripeOperation, idempotencyKey: string | null, run: (stripe: Stripe) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let sent: SentRequest | null = null;
      const guarded = {
        guard: () => deps.guard,
        onSend: (req: SentRequest) => {
          sent = req;
        },
        beforeSend: async () => {
          await deps.pacer?.acquire();
        },
        operation,
      };
      const log = async (status: "succeeded" | "failed" | "blocked", extra: { httpStatus?: number; stripeIds?: string[]; errorCode?: string }) => {
        const s = sent as SentRequest | null;
        await requestLog.record({
          id: newId("sreq"),
          officeId: deps.officeId,
          operation,
          method: s?.method ?? "POST",
          path: s?.path ?? "",
          idempotencyKey,
          bodySha256: await sha256Hex(s?.body ?? ""),
          status,
          httpStatus: extra.httpStatus ?? null,
          stripeIds: extra.stripeIds ?? null,
          errorCode: extra.errorCode ?? null,
          requestId: deps.requestId,
          finishedAt: clock.now(),
          // The attempt's own time (real, as the column's default): rows written later in one batch keep their order.
          createdAt: Date.now(),
        });
      };
      // The request log must not fail a call that Stripe completed (nor make it look unanswered).
      const record = async (status: "succeeded" | "failed" | "blocked", extra: Parameters<typeof log>[1]) => {
        try {
          await log(status, extra);
        } catch (err) {
          console.error(JSON.stringify({ level: "error", msg: "stripe request log write failed", operation, officeId: deps.officeId, status, error: err instanceof Error ? err.name : "error" }));
        }
      };
      let result: T;
      try {
        result = await withStripeClient(secret, deps.config.STRIPE_API_BASE, deps.config.STRIPE_TIMEOUT_MS, guarded, run);
      } catch (err) {
        const error = unwrapBlocked(err);
        // The rate limiter did not answer: no request was made; the caller retries later.
        if (error instanceof RateLimiterUnavailableError) throw new StripeCallError(operation, true, "rate_limiter_unavailable", null);
        // The pacer's line is full: nothing was sent; the outbox retries the item when it says.
        if (error instanceof PacerBusyError) throw new StripeCallError(operation, true, "rate_limiter_busy", null, Date.now() + error.retryAfterMs);
        if (error instanceof EgressBlockedError) {
          const kinds = [...new Set(error.findings.map((f) => f.kind))];
          const fields = [...new Set(error.findings.map((f) => f.field))];
          console.error(JSON.stringify({ level: "error", msg: "phi_egress_blocked", operation, officeId: deps.officeId, kinds, fields }));
          await record("blocked", { errorCode: "phi_egress_blocked" });
          await deps.onBlocked({ operation, kinds, fields });
          throw new ApiError("UNPROCESSABLE", `The request to Stripe was blocked by the PHI egress guard (${kinds.join(", ")} in ${fields.join(", ")}); nothing was sent.`);
        }
        if (sent) calls++;
        const stripeError = error as StripeErrorLike;
        // Stripe's own error code or type (`rate_limit`, `api_error`, …); no answer at all: a connection error.
        const code = stripeError.code ?? stripeError.raw?.type ?? (stripeError.statusCode ? stripeError.type : undefined) ?? "connection_error";
        await record("failed", { httpStatus: stripeError.statusCode, errorCode: code });
        const retryable = isRetryable(stripeError);
        // Stripe's rate limit (not an object's lock, `lock_timeout`): the pacer's margin grows.
        const rateLimited = stripeError.statusCode === 429 && code === "rate_limit";
        if (rateLimited) await deps.pacer?.limited().catch(() => undefined);
        if (stripeError.statusCode === 401 || stripeError.statusCode === 403) {
          console.error(JSON.stringify({ level: "error", msg: "stripe refused our key (revoked or missing permission): operator action needed", operation, httpStatus: stripeError.statusCode }));
        }
        if (!retryable || attempt >= (rateLimited ? rateLimitAttempts : maxAttempts)) throw new StripeCallError(operation, retryable, code, stripeError.statusCode ?? null);
        await sleep(backoffDelay(attempt, backoffMs, 10_000));
        continue;
      }
      calls++;
      await record("succeeded", { httpStatus: 200, stripeIds: result.id ? [result.id] : [] });
      return result;
    }
  }

  /** When our request log first recorded a request with this idempotency key (our clock), or null. */
  function firstUseOf(key: string): Promise<number | null> {
    return requestLog.firstUse(key);
  }

  /**
   * Whether a create must look its object up before it is sent: an earlier attempt with the same
   * key is on record from long enough ago that Stripe may have forgotten the key (docs/architecture.md,
   * "Creates past Stripe's 24 hours").
   */
  async function mustLookUp(key: string): Promise<boolean> {
    const first = await firstUseOf(key);
    return first !== null && clock.now() - first >= LOOKUP_AFTER_MS;
  }

  const toState = (inv: Stripe.Invoice): StripeInvoiceState => ({
    id: inv.id!,
    status: (inv.status ?? "draft") as StripeInvoiceState["status"],
    amountDue: inv.amount_due,
    amountPaid: inv.amount_paid,
    amountRemaining: inv.amount_remaining,
    startingBalance: inv.starting_balance ?? 0,
    prePaymentCredited: inv.pre_payment_credit_notes_amount ?? 0,
    lineCount: inv.lines.data.length,
    paymentIntent: paymentIntentOf(inv),
    dueAt: inv.due_date ? inv.due_date * 1000 : null,
    number: inv.number ?? null,
    hostedInvoiceUrl: inv.hosted_invoice_url ?? null,
    invoicePdf: inv.invoice_pdf ?? null,
    ...stripeInvoiceTax(inv),
  });

  return {
    /** Stripe requests that reached Stripe (every attempt counts), for the push's audit entry. */
    get calls() {
      return calls;
    },

    /**
     * The office's Stripe customer, created once: within 24 hours the key makes a repeat return the
     * same customer; after a long gap the customer is first looked up by our reference.
     */
    async ensureCustomer(office: OfficeForStripe): Promise<{ id: string; adopted: boolean }> {
      const payload = customerPayload.parse({
        name: office.legalName,
        email: office.billingEmail,
        ...(office.billingAddress ? { address: stripeAddress(office.billingAddress) } : {}),
        metadata: { office_ref: office.id },
      });
      const key = `customer_${office.id}`;
      if (await mustLookUp(key)) {
        const found = await this.findCustomer(office);
        if (found) return { id: found, adopted: true };
      }
      const created = await call("customer", key, (s) => s.customers.create(payload, { idempotencyKey: key }));
      return { id: created.id, adopted: false };
    },

    /**
     * The office's customer at Stripe by our reference (`metadata.office_ref`), or null: first the
     * customers listed under the office's billing e-mail (a list: read-after-write consistent),
     * then Stripe's search on the reference (eventually consistent, but the object we look for is
     * hours old; it also finds a customer whose e-mail was changed in the Dashboard).
     */
    async findCustomer(office: Pick<OfficeForStripe, "id" | "billingEmail">): Promise<string | null> {
      const ours = (c: Stripe.Customer) => c.metadata?.office_ref === office.id;
      const listed = await call("findCustomer", null, async (s) => {
        const list = await s.customers.list({ email: office.billingEmail, limit: 100 });
        return { id: list.data.find(ours)?.id ?? "" };
      });
      if (listed.id) return listed.id;
      const searched = await call("findCustomer", null, async (s) => {
        const result = await s.customers.search({ query: `metadata['office_ref']:'${office.id}'`, limit: 10 });
        return { id: result.data.find(ours)?.id ?? "" };
      });
      return searched.id || null;
    },

    /** A Stripe invoice of the customer made for our invoice (`metadata.invoice_ref`), newest first through every page, or null. */
    async findInvoice(customerId: string, invoiceId: string): Promise<StripeInvoiceState | null> {
      let startingAfter: string | undefined;
      for (;;) {
        const page = await call("findInvoice", null, async (s) => {
          const list = await s.invoices.list({ customer: customerId, limit: 100, ...(startingAfter ? { starting_after: startingAfter } : {}) });
          const match = list.data.find((inv) => inv.metadata?.invoice_ref === invoiceId && inv.metadata?.office_ref === deps.officeId);
          return { id: match?.id ?? "", match, last: list.data.at(-1)?.id, more: list.has_more };
        });
        if (page.match) return this.readInvoice(page.match.id!);
        if (!page.more || !page.last) return null;
        startingAfter = page.last;
      }
    },

    /** The office's profile at `version` onto its customer (§4.2), keyed by the version: sent once per version. */
    updateCustomer(customerId: string, office: OfficeForStripe, version: number) {
      const payload = customerUpdatePayload.parse({ name: office.legalName, email: office.billingEmail, address: office.billingAddress ? stripeAddress(office.billingAddress) : "" });
      const key = `customer_${office.id}_profile_${version}`;
      return call("customerUpdate", key, (s) => s.customers.update(customerId, payload, { idempotencyKey: key }));
    },

    /** Validates both payloads of an invoice before anything is sent (a bad line fails the push up front). */
    invoicePayloads(customerId: string, invoice: InvoiceForStripe) {
      return invoiceRequests(deps.officeId, customerId, invoice);
    },

    /**
     * Step 1 of a push: the draft (collection by Stripe, charged automatically once finalized). After
     * a long gap since the key's first use, an invoice Stripe already made for ours is adopted
     * (`adopted: true`, in whatever state it is) instead of a second one being created.
     */
    async createDraft(customerId: string, invoice: InvoiceForStripe): Promise<StripeInvoiceState & { adopted: boolean }> {
      const { created } = this.invoicePayloads(customerId, invoice);
      const key = `invoice_${invoice.id}_create`;
      if (await mustLookUp(key)) {
        const found = await this.findInvoice(customerId, invoice.id);
        if (found) return { ...found, adopted: true };
      }
      return { ...toState(await call("invoice", key, (s) => s.invoices.create(created, { idempotencyKey: key }))), adopted: false };
    },

    /**
     * Before step 1, under Stripe Tax: the invoice's discount as its own coupon (invoice-discount.ts),
     * keyed by the invoice; one already made under our id (a repeat past the key's 24 hours) is it.
     */
    async createCoupon(invoice: InvoiceForStripe): Promise<string | null> {
      if (invoice.discount !== "coupon" || discountOf(invoice.lines) <= 0) return null;
      const params = couponParams(deps.officeId, invoice);
      const key = `coupon_${invoice.id}`;
      try {
        await call("coupon", key, (s) => s.coupons.create(params, { idempotencyKey: key }));
      } catch (err) {
        if (!(err instanceof StripeCallError && err.code === "resource_already_exists")) throw err;
      }
      return params.id!;
    },

    /** Step 2: every line in one call, whatever the patient count (lines are aggregates). */
    async addLines(stripeInvoiceId: string, customerId: string, invoice: InvoiceForStripe) {
      const { lines } = this.invoicePayloads(customerId, invoice);
      const key = `invoice_${invoice.id}_lines`;
      return toState(await call("addLines", key, (s) => s.invoices.addLines(stripeInvoiceId, lines, { idempotencyKey: key })));
    },

    /**
     * Step 3: finalize; Stripe then collects the payment itself. `attempt` names a finalize after a
     * held one (§11.7): Stripe saved its refusal under the first key, so a new request needs a new key.
     */
    async finalize(stripeInvoiceId: string, invoiceId: string, attempt?: number) {
      const key = attempt === undefined ? `invoice_${invoiceId}_finalize` : `invoice_${invoiceId}_finalize_p${attempt}`;
      return toState(await call("finalize", key, (s) => s.invoices.finalizeInvoice(stripeInvoiceId, { auto_advance: true }, { idempotencyKey: key })));
    },

    /**
     * An invoice in three calls whatever its size: create the draft, add every line at once,
     * finalize. Both payloads are checked against their schemas before the first call.
     */
    async pushInvoice(customerId: string, invoice: InvoiceForStripe) {
      this.invoicePayloads(customerId, invoice);
      const draft = await this.createDraft(customerId, invoice);
      await this.addLines(draft.id, customerId, invoice);
      return this.finalize(draft.id, invoice.id);
    },

    /** The office's manual tax rate on Stripe (§11.3): one per office and rate, keyed by both. */
    async createTaxRate(basisPoints: number, name: (typeof taxRateNames)[number]) {
      const payload = taxRatePayload.parse({ display_name: name, percentage: percentageOf(basisPoints), inclusive: false, metadata: { office_ref: deps.officeId } });
      const key = `taxrate_${deps.officeId}_${basisPoints}_${name.replace(/\s+/g, "_").toLowerCase()}`;
      const rate: Stripe.TaxRate = await call("taxRate", key, (s) => s.taxRates.create(payload, { idempotencyKey: key }));
      return { id: rate.id };
    },

    /** Stripe's current state of an invoice (a read: no idempotency key, nothing changes). */
    async readInvoice(stripeInvoiceId: string) {
      return toState(await call("readInvoice", null, (s) => s.invoices.retrieve(stripeInvoiceId, { expand: ["payments"] })));
    },

    /** A charge's customer (to find the office of a dispute), its payment intent and what was refunded of it. */
    async readCharge(chargeId: string) {
      const charge: Stripe.Charge = await call("readCharge", null, (s) => s.charges.retrieve(chargeId));
      const ref = (v: string | { id: string } | null) => (typeof v === "string" ? v : (v?.id ?? null));
      return { id: charge.id, customer: ref(charge.customer), paymentIntent: ref(charge.payment_intent), amountRefunded: charge.amount_refunded };
    },

    /** A refund as Stripe has it now (a refund event is only a hint of it). */
    async readRefund(refundId: string): Promise<StripeRefundState> {
      return refundState(await call("readRefund", null, (s) => s.refunds.retrieve(refundId)));
    },

    /** Every refund of a charge, as Stripe has them now (a `charge.refunded` event lists none). */
    async refundsOfCharge(chargeId: string): Promise<StripeRefundState[]> {
      const found = await call("readRefund", null, async (s) => ({ id: "", refunds: await s.refunds.list({ charge: chargeId, limit: 100 }).autoPagingToArray({ limit: 1000 }) }));
      return found.refunds.map(refundState);
    },

    /**
     * The Stripe invoice a payment intent paid, or null (not an invoice's payment): charges do not
     * name their invoice in this API version; the invoice's payments name the payment intent.
     */
    async invoiceOfPaymentIntent(paymentIntent: string) {
      const found = await call("readInvoice", null, async (s) => {
        const list = await s.invoicePayments.list({ payment: { type: "payment_intent", payment_intent: paymentIntent }, limit: 1 });
        const payment: Stripe.InvoicePayment | undefined = list.data[0];
        return { id: payment ? (typeof payment.invoice === "string" ? payment.invoice : payment.invoice.id) : "" };
      });
      return found.id || null;
    },

    /** Voids a finalized, unpaid Stripe invoice. */
    async voidInvoice(stripeInvoiceId: string, invoiceId: string) {
      const key = `invoice_${invoiceId}_void`;
      return toState(await call("void", key, (s) => s.invoices.voidInvoice(stripeInvoiceId, {}, { idempotencyKey: key })));
    },

    /** Refunds (part of) a paid invoice's payment; the key is the internal refund's id. */
    async refund(input: { refundId: string; invoiceId: string; paymentIntent: string; amount: number; reason?: "duplicate" | "requested_by_customer" }) {
      const payload = refundPayload.parse({
        payment_intent: input.paymentIntent,
        amount: input.amount,
        ...(input.reason ? { reason: input.reason } : {}),
        metadata: { invoice_ref: input.invoiceId, refund_ref: input.refundId },
      });
      const key = `refund_${input.refundId}`;
      const refund = await call("refund", key, (s) => s.refunds.create(payload, { idempotencyKey: key }));
      return { id: refund.id, status: refund.status ?? "pending", amount: refund.amount };
    },

    /**
     * Creates a credit note of a finalized invoice (docs/payment-plan.md §8.10); the key is the
     * internal credit note's id. A paid invoice's credit goes whole to a refund or to the
     * customer's balance.
     */
    async createCreditNote(input: CreditNoteRequest) {
      const payload = creditNoteRequest(input);
      const key = `credit_note_${input.creditNoteId}`;
      return creditNoteState(await call("creditNote", key, (s) => s.creditNotes.create(payload, { idempotencyKey: key })));
    },

    /**
     * Stripe's lines of an invoice we pushed, by our line reference (`metadata.line_ref`, set by
     * the push): Stripe's `il_` id and amount of each (a read: all pages).
     */
    async invoiceLineIds(stripeInvoiceId: string): Promise<Map<string, { id: string; amount: number }>> {
      const found = await call("readInvoice", null, async (s) => ({ id: stripeInvoiceId, lines: await s.invoices.listLineItems(stripeInvoiceId, { limit: 100 }).autoPagingToArray({ limit: 1000 }) }));
      const out = new Map<string, { id: string; amount: number }>();
      for (const l of found.lines) if (l.metadata?.line_ref && l.id) out.set(l.metadata.line_ref, { id: l.id, amount: l.amount });
      return out;
    },

    /** The credit notes Stripe has of an invoice (a read: all pages), for the reconciliation's catch-up (§8.10). */
    async creditNotesOfInvoice(stripeInvoiceId: string): Promise<StripeCreditNoteState[]> {
      const found = await call("readCreditNote", null, async (s) => ({ id: stripeInvoiceId, notes: await s.creditNotes.list({ invoice: stripeInvoiceId, limit: 100 }).autoPagingToArray({ limit: 1000 }) }));
      return found.notes.map(creditNoteState);
    },

    /** A credit note as Stripe has it now (a credit-note event is only a hint of it). */
    async readCreditNote(stripeCreditNoteId: string): Promise<StripeCreditNoteState> {
      return creditNoteState(await call("readCreditNote", null, (s) => s.creditNotes.retrieve(stripeCreditNoteId)));
    },

    /**
     * A Stripe-hosted billing-portal session where an office admin manages payment methods; card
     * data never touches this API. The key is made of the office and the portal request's own id.
     */
    async portalSession(customerId: string, returnUrl: string, sessionRef: string) {
      const payload = portalPayload.parse({ customer: customerId, return_url: returnUrl });
      const key = `portal_${deps.officeId}_${sessionRef}`;
      const session = await call("portal", key, async (s) => {
        try {
          return await s.billingPortal.sessions.create(payload, { idempotencyKey: key });
        } catch (err) {
          // Stripe names this refusal only in its message (400, no code): given our own code here.
          if (isPortalNotConfigured(err)) Object.assign(err as object, { code: PORTAL_NOT_CONFIGURED });
          throw err;
        }
      });
      return { id: session.id, url: session.url };
    },

    /**
     * A Stripe Checkout Session in setup mode where an office admin adds a payment method (Stripe's
     * hosted page; no card data touches this API). The key is made of the office and the request's id.
     */
    async checkoutSetupSession(input: { customerId: string; currency: string; successUrl: string; cancelUrl: string; sessionRef: string }) {
      const payload = checkoutSetupPayload.parse({ mode: "setup", customer: input.customerId, currency: input.currency, success_url: input.successUrl, cancel_url: input.cancelUrl, metadata: { office_ref: deps.officeId } });
      const key = `setup_${deps.officeId}_${input.sessionRef}`;
      const session: Stripe.Checkout.Session = await call("checkoutSetup", key, (s) => s.checkout.sessions.create(payload, { idempotencyKey: key }));
      return { id: session.id, url: session.url, expiresAt: session.expires_at * 1000 };
    },

    /** A SetupIntent: its status, customer and payment method (what a completed setup session collected). */
    async readSetupIntent(setupIntentId: string) {
      const si: Stripe.SetupIntent = await call("readSetupIntent", null, (s) => s.setupIntents.retrieve(setupIntentId));
      const ref = (v: string | { id: string } | null) => (typeof v === "string" ? v : (v?.id ?? null));
      return { id: si.id, status: si.status, customer: ref(si.customer), paymentMethod: ref(si.payment_method) };
    },

    /** Makes a payment method the customer's default for invoices, once per `sessionRef` (the key); answers the resulting state. */
    async setDefaultPaymentMethod(customerId: string, paymentMethodId: string, sessionRef: string): Promise<PaymentMethodState> {
      const payload = defaultPaymentMethodPayload.parse({ invoice_settings: { default_payment_method: paymentMethodId }, expand: ["invoice_settings.default_payment_method"] });
      const key = `customer_${deps.officeId}_default_${sessionRef}`;
      const customer: Stripe.Customer = await call("defaultPaymentMethod", key, (s) => s.customers.update(customerId, payload, { idempotencyKey: key }));
      return paymentMethodState(customer);
    },

    /** The customer's default payment method for invoices, as Stripe has it now. */
    async readPaymentMethodState(customerId: string): Promise<PaymentMethodState> {
      const customer = await call("readCustomer", null, async (s) => {
        const c = await s.customers.retrieve(customerId, { expand: ["invoice_settings.default_payment_method"] });
        if (c.deleted) return { id: c.id, state: { status: "none" } as PaymentMethodState };
        return { id: c.id, state: paymentMethodState(c) };
      });
      return customer.state;
    },
  };
}

export type StripeGateway = ReturnType<typeof stripeGateway>;
