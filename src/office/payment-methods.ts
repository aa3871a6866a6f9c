import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { dataKeyring, openReference } from "../security/data-keys";
import type { Collection, PaymentMethodState } from "../stripe/gateway";
import type { StripeEvent } from "../stripe/webhooks";
import * as clock from "../clock";

import type { StripeOutbox } from "./stripe-sync";
import { customerCol, type EventRow, type InvoiceRow, type Work } from "./stripe-work";
import { basisColumns, taxBasisFor } from "./invoice-tax";

/** Days an invoice sent by e-mail has until it is due, unless SEND_INVOICE_DAYS_UNTIL_DUE says otherwise (docs/payment-plan.md §10). */
export const DEFAULT_DAYS_UNTIL_DUE = 14;

/** The Stripe events about an office's payment method (docs/payment-plan.md §10). */
export const paymentMethodEventTypes = ["checkout.session.completed", "setup_intent.succeeded", "payment_method.attached", "payment_method.detached"] as const;

/**
 * The office's payment method, kept from Stripe's events (docs/payment-plan.md §10). The setup
 * sessions we create are recorded in the office object's own storage; a completed session is
 * trusted only when its id is one of them. The state itself is always what Stripe reports when
 * asked (the customer's default payment method), never what an event says.
 */
export class PaymentMethods {
  constructor(private readonly outbox: StripeOutbox) {
    outbox.host.storage.sql.exec("CREATE TABLE IF NOT EXISTS setup_sessions (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, completed_at INTEGER)");
  }

  private get host() {
    return this.outbox.host;
  }

  /**
   * A hosted link where an office admin adds a payment method: a Checkout Session in setup mode for
   * the office's customer (created if it has none), in its plan's currency, recorded before it is
   * answered. The URL is a bearer link: neither logged nor audited (the session's creation is).
   */
  async createSetupSession(work: Pick<Work, "office" | "patientKeys">, currency: string, urls: { success: string; cancel: string }, requestId: string) {
    const customerId = await this.outbox.customerId(work, requestId);
    const gateway = this.outbox.gateway(work, [], requestId, { success_url: urls.success, cancel_url: urls.cancel });
    const session = await gateway.checkoutSetupSession({ customerId, currency, successUrl: urls.success, cancelUrl: urls.cancel, sessionRef: requestId });
    if (!session.url) throw new Error("Stripe answered a setup session without a URL");
    this.recordSession(session.id, session.expiresAt);
    return { url: session.url, expiresAt: new Date(session.expiresAt).toISOString() };
  }

  /**
   * How Stripe collects the invoice (docs/payment-plan.md §10): decided at its first push — the
   * office's net terms when it has some (sent by e-mail, due in that many days), else its payment
   * method (on file: charged automatically; none: sent by e-mail, due in
   * `SEND_INVOICE_DAYS_UNTIL_DUE` days) — and stored, so a resumed push sends the same request.
   */
  async collectionOf(work: Work, invoice: InvoiceRow): Promise<Collection> {
    const defaultDays = this.host.config.SEND_INVOICE_DAYS_UNTIL_DUE ?? DEFAULT_DAYS_UNTIL_DUE;
    if (!invoice.collectionMethod) {
      // Net terms agreed with the office (§10.4) come first; else the payment method on file decides (§10.3).
      const terms = work.office.netTermsDays;
      const method = terms === null && work.office.paymentMethodStatus === "on_file" ? "charge_automatically" : "send_invoice";
      const days = method === "send_invoice" ? (terms ?? defaultDays) : null;
      // The tax basis is fixed with it, in the same write (§11.4).
      const tax = basisColumns(taxBasisFor(work.office, this.host.config));
      const db = this.host.db;
      const rows = (await this.host.commit(
        "stripe.collection",
        () => [
          db.run(sql`UPDATE ${invoices} SET collection_method = ${method}, days_until_due = ${days}, tax_mode = ${tax.mode}, tax_rate_bps = ${tax.bps}, tax_rate_name = ${tax.name}
            WHERE id = ${invoice.id} AND collection_method IS NULL`),
        ],
        [],
        () => [
          db
            .select({ method: invoices.collectionMethod, days: invoices.daysUntilDue, taxMode: invoices.taxMode, taxRateBps: invoices.taxRateBps, taxRateName: invoices.taxRateName })
            .from(invoices)
            .where(eq(invoices.id, invoice.id)),
        ],
      )) as unknown[];
      const stored = (rows.at(-1) as (Pick<InvoiceRow, "taxMode" | "taxRateBps" | "taxRateName"> & { method: InvoiceRow["collectionMethod"]; days: number | null })[])[0];
      invoice.collectionMethod = stored?.method ?? method;
      invoice.daysUntilDue = stored?.days ?? days;
      invoice.taxMode = stored ? stored.taxMode : tax.mode;
      invoice.taxRateBps = stored ? stored.taxRateBps : tax.bps;
      invoice.taxRateName = stored ? stored.taxRateName : tax.name;
    }
    // Fixed at the first push, so a resumed push sends the same create request under its key.
    return invoice.collectionMethod === "send_invoice" ? { method: "send_invoice", daysUntilDue: invoice.daysUntilDue ?? defaultDays } : { method: "charge_automatically" };
  }

  /** Records a setup session we created (before its link is answered). */
  recordSession(id: string, expiresAt: number) {
    this.host.storage.sql.exec("INSERT INTO setup_sessions (id, created_at, expires_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING", id, clock.now(), expiresAt);
  }

  private session(id: string): { id: string; completed_at: number | null } | undefined {
    return this.host.storage.sql.exec<{ id: string; completed_at: number | null }>("SELECT id, completed_at FROM setup_sessions WHERE id = ?", id).toArray()[0];
  }

  private async customerId(work: Pick<Work, "office">): Promise<string | null> {
    if (!work.office.stripeCustomerRef) return null;
    return openReference(await dataKeyring(this.host.config), customerCol, work.office.id, work.office.stripeCustomerRef);
  }

  /** Applies one payment-method event; `finish` marks it done (with the state change's statements). */
  async processEvent(
    work: Work,
    event: EventRow,
    finish: (outcome: "processed" | "ignored" | "rejected", details: Record<string, unknown>, statements?: ReturnType<Database["run"]>[]) => Promise<void>,
  ): Promise<void> {
    const payload = event.payload as StripeEvent;
    const obj = payload.data.object;
    const requestId = `webhook:${event.id}`;
    const customerId = await this.customerId(work);
    if (!customerId) return finish("ignored", { error: "customer_unknown" });
    const gateway = () => this.outbox.gateway(work, [], requestId);
    if (event.type === "checkout.session.completed") {
      const sessionId = typeof obj.id === "string" ? obj.id : "";
      const recorded = this.session(sessionId);
      // Only a session we created and recorded: anyone with Dashboard access can make one for our customer.
      if (!recorded) {
        console.error(JSON.stringify({ level: "error", msg: "stripe webhook refused: a checkout session we did not create", officeId: this.host.officeId, eventId: event.id }));
        return finish("rejected", { error: "session_unknown", reason: "session_unknown" });
      }
      if (obj.mode !== "setup" || obj.customer !== customerId) return finish("rejected", { error: "session_mismatch", reason: "session_mismatch" });
      const setupIntentId = typeof obj.setup_intent === "string" ? obj.setup_intent : null;
      if (!setupIntentId) return finish("ignored", { error: "no_setup_intent" });
      // Stripe's own SetupIntent decides, not the event.
      const si = await gateway().readSetupIntent(setupIntentId);
      if (si.status !== "succeeded" || si.customer !== customerId || !si.paymentMethod) return finish("ignored", { error: "setup_not_succeeded", status: si.status });
      const state = await gateway().setDefaultPaymentMethod(customerId, si.paymentMethod, sessionId);
      this.host.storage.sql.exec("UPDATE setup_sessions SET completed_at = COALESCE(completed_at, ?) WHERE id = ?", clock.now(), sessionId);
      return finish("processed", { paymentMethod: summary(state), defaultSet: true }, this.stateStatements(state));
    }
    if (event.type === "customer.updated" || event.type === "payment_method.detached") {
      const state = await gateway().readPaymentMethodState(customerId);
      return finish("processed", { paymentMethod: summary(state) }, this.stateStatements(state));
    }
    // setup_intent.succeeded, payment_method.attached: recorded; the default comes with the session.
    return finish("processed", { recorded: true });
  }

  /** The office's stored payment-method state (an UPDATE in the event's own batch). */
  stateStatements(state: PaymentMethodState): ReturnType<Database["run"]>[] {
    const db = this.host.db;
    const on = state.status === "on_file" ? state : null;
    return [
      db.run(sql`UPDATE ${offices} SET payment_method_status = ${state.status}, payment_method_brand = ${on?.brand ?? null}, payment_method_last4 = ${on?.last4 ?? null},
        payment_method_exp_month = ${on?.expMonth ?? null}, payment_method_exp_year = ${on?.expYear ?? null}, updated_at = ${clock.now()} WHERE id = ${this.host.officeId}`),
    ];
  }
}

/** What the audit entry says of a payment method (brand and last 4: office payment data). */
const summary = (s: PaymentMethodState) => (s.status === "on_file" ? { status: s.status, brand: s.brand, last4: s.last4 } : { status: s.status });
