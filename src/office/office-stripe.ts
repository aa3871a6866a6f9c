import { eq, sql, type SQL } from "drizzle-orm";
import { payable } from "../stripe/invoice-tax";
import { invoiceLines, invoices } from "../db/invoices";
import { minimumCharge } from "../billing/minimum";
import { creditNotes, type creditNoteMemoKeys, type creditNoteReasons } from "../db/credit-notes";
import { planVersions } from "../db/plans";
import { ApiError } from "../errors";
import { newId } from "../security/request-id";
import { failure, ok, unwrap, type OfficeResult } from "./result";
import { refunds, type refundReasons } from "../db/refunds";
import { loadConfig } from "../config";
import { dataKeyring, encryptedColumns, openReference } from "../security/data-keys";
import { PORTAL_NOT_CONFIGURED, StripeCallError } from "../stripe/gateway";
import { emptyReport, StripeOutbox, type SyncReport } from "./stripe-sync";
import * as clock from "../clock";
import { OfficeCore, type Actor } from "./office-core";

export type CreditNoteInput = {
  invoiceId: string;
  amount: number | null;
  lines: { lineId: string; amount: number }[] | null;
  reason: (typeof creditNoteReasons)[number];
  memo: (typeof creditNoteMemoKeys)[number];
  settlement: "refund" | "customer_balance" | null;
};

/**
 * The office object's Stripe operations (docs/payment-plan.md §8–§10): running its outbox on
 * demand, reconciliation, voids, refunds, the billing portal and the payment-method setup link.
 * Each is serialized with the outbox's own work; outcomes are written through the core's audited write.
 */
export abstract class OfficeStripe extends OfficeCore {

  /** Runs the Stripe outbox now and reports what it did (the sweep, tests, operators). */
  async syncStripe(officeId: string): Promise<OfficeResult<SyncReport & { pendingRetries: { item: string; attempts: number; nextAt: number; lastError: string | null }[] }>> {
    try {
      this.before(officeId);
      const report = await this.outbox(officeId).drain();
      const pendingRetries = this.outbox(officeId).retries().map((r) => ({ item: r.item, attempts: r.attempts, nextAt: r.next_at, lastError: r.last_error }));
      return ok({ ...report, pendingRetries });
    } catch (err) {
      return failure(err);
    }
  }

  /** Compares this office's open and unconfirmed invoices with Stripe and repairs missed webhooks. */
  async reconcileStripe(officeId: string): Promise<OfficeResult<SyncReport & { checked: number }>> {
    try {
      this.before(officeId);
      return ok(await this.outbox(officeId).reconcile());
    } catch (err) {
      return failure(err);
    }
  }

  /** Arms the outbox's alarm (the hourly sweep calls it for offices with unsettled Stripe work). */
  async kickStripe(officeId: string): Promise<OfficeResult<{ alarmAt: number | null }>> {
    try {
      this.before(officeId);
      await this.outbox(officeId).schedule();
      return ok({ alarmAt: await this.ctx.storage.getAlarm() });
    } catch (err) {
      return failure(err);
    }
  }

  /** Runs `fn` under the office's Stripe lock and never rejects across RPC. */
  private async stripeOperation<T>(officeId: string, fn: (outbox: StripeOutbox) => Promise<T>): Promise<OfficeResult<T>> {
    try {
      this.before(officeId);
      const outbox = this.outbox(officeId);
      return ok(await outbox.serialized(() => fn(outbox)));
    } catch (err) {
      return failure(err);
    }
  }

  /** Records a refused operation on the chain (through the operation queue), then refuses it. */
  private async refuseQueued(officeId: string, actor: Actor, action: string, targetIds: string[], error: ApiError): Promise<never> {
    unwrap(await this.exclusive(officeId, action, () => this.refuse(officeId, actor, action, targetIds, error)));
    throw error;
  }

  /** Stripe's answer to an interactive request, as the API reports it. */
  private stripeProblem(err: unknown, what: string): unknown {
    if (!(err instanceof StripeCallError)) return err;
    return err.retryable
      ? new ApiError("SERVICE_UNAVAILABLE", `Stripe could not be reached to ${what}; nothing was changed. Try again later.`)
      : new ApiError("STRIPE_REFUSED", `Stripe refused to ${what} (${err.code}).`);
  }

  /**
   * Voids an open invoice (platform_admin). Serialized with the office's Stripe work, so a push in
   * flight completes first. An invoice Stripe has is read there first: one Stripe already collected
   * is not voided (409; it is marked paid and can be refunded). The Stripe copy, if any, is then
   * voided by the outbox.
   */
  async voidInvoice(officeId: string, invoiceId: string, actor: Actor): Promise<OfficeResult<typeof invoices.$inferSelect>> {
    const result = await this.stripeOperation(officeId, async (outbox) => {
      const [invoice] = await this.db.select().from(invoices).where(sql`${invoices.id} = ${invoiceId} AND ${invoices.officeId} = ${officeId}`);
      if (!invoice) throw new ApiError("NOT_FOUND", "No such invoice for this office.");
      if (invoice.status === "open" && invoice.stripeInvoiceRef) {
        const work = await outbox.readOffice();
        const ring = await dataKeyring(loadConfig(this.env));
        let state;
        try {
          state = await outbox.gateway(work!, [], actor.requestId).readInvoice(await openReference(ring, encryptedColumns[1], invoice.id, invoice.stripeInvoiceRef));
        } catch (err) {
          throw this.stripeProblem(err, "confirm the invoice is unpaid");
        }
        if (state.status === "paid") {
          const now = clock.now();
          await outbox.commit(
            "invoice.paid",
            () => [this.db.run(sql`UPDATE ${invoices} SET status = 'paid', amount_paid = ${state.amountPaid}, paid_at = COALESCE(paid_at, ${now}), payment_failed_at = NULL, updated_at = ${now} WHERE id = ${invoice.id} AND status = 'open'`)],
            [{ ...actor, action: "invoice.paid", outcome: "succeeded", targetIds: [invoice.id], details: { source: "stripe_read", amountPaid: state.amountPaid } }],
          );
          return this.refuseQueued(officeId, actor, "invoice.void", [invoiceId], new ApiError("CONFLICT", "Stripe has already collected this invoice; refund it instead of voiding it."));
        }
      }
      const row = unwrap(
        await this.exclusive(officeId, "invoice.void", async () => {
          const now = clock.now();
          const voidedNow = sql`EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${invoiceId} AND ${invoices.voidedAt} = ${now} AND ${invoices.status} = 'void')`;
          const results = await this.write<unknown[]>(
            officeId,
            () => [this.db.run(sql`UPDATE ${invoices} SET status = 'void', voided_at = ${now}, payment_failed_at = NULL, updated_at = ${now} WHERE id = ${invoiceId} AND office_id = ${officeId} AND status = 'open'`)],
            [{ ...actor, action: "invoice.void", outcome: "succeeded", officeId, targetIds: [invoiceId] }],
            { auditIf: voidedNow, recorded: (r) => (r.at(-1) as { voidedAt: number | null }[])[0]?.voidedAt === now },
            () => [this.db.select().from(invoices).where(sql`${invoices.id} = ${invoiceId} AND ${invoices.officeId} = ${officeId}`)],
          );
          const updated = (results.at(-1) as (typeof invoices.$inferSelect)[])[0];
          if (!updated) throw new ApiError("NOT_FOUND", "No such invoice for this office.");
          if (updated.voidedAt !== now) {
            return this.refuse(officeId, actor, "invoice.void", [invoiceId], new ApiError("CONFLICT", `The invoice is ${updated.status}; only an open invoice can be voided.`));
          }
          return updated;
        }),
      );
      return row;
    });
    return this.thenSync(officeId, Promise.resolve(result));
  }

  /**
   * Refunds a paid invoice, fully or in part (platform_admin). Stripe's state of the invoice is
   * read first (it may be paid before its webhook arrived); the refund is recorded `pending`, then
   * made on Stripe with the refund's id as its key. If Stripe cannot be reached it stays pending and
   * the outbox retries it (within Stripe's 24-hour key memory): never lost, never made twice.
   */
  async refund(
    officeId: string,
    input: { invoiceId: string; amount: number | null; reason: (typeof refundReasons)[number] },
    actor: Actor,
  ): Promise<OfficeResult<{ refund: typeof refunds.$inferSelect; remaining: number }>> {
    return this.stripeOperation(officeId, async (outbox) => {
      const db = this.db;
      const committed = sql`(SELECT COALESCE(SUM(amount), 0) FROM ${refunds} WHERE invoice_id = ${input.invoiceId} AND status IN ('pending','succeeded'))`;
      const [invoiceRows, committedRows] = await db.batch([
        db.select().from(invoices).where(sql`${invoices.id} = ${input.invoiceId} AND ${invoices.officeId} = ${officeId}`),
        db.select({ amount: sql<number>`${committed}` }).from(sql`(SELECT 1)`),
      ] as const);
      const invoice = invoiceRows[0];
      const refuse = (error: ApiError) => this.refuseQueued(officeId, actor, "refund.request", [input.invoiceId], error);
      if (!invoice) throw new ApiError("NOT_FOUND", "No such invoice for this office.");
      if (invoice.status === "void") return refuse(new ApiError("CONFLICT", "The invoice is void; there is no payment to refund."));
      if (invoice.stripeState !== "finalized" || !invoice.stripeInvoiceRef) {
        return refuse(new ApiError("CONFLICT", "The invoice was not collected through Stripe; there is no payment to refund."));
      }
      const work = await outbox.readOffice();
      if (!work) throw new ApiError("NOT_FOUND", "No such office.");
      const ring = await dataKeyring(loadConfig(this.env));
      const stripeId = await openReference(ring, encryptedColumns[1], invoice.id, invoice.stripeInvoiceRef);
      let state;
      try {
        state = await outbox.gateway(work, [], actor.requestId).readInvoice(stripeId);
      } catch (err) {
        throw this.stripeProblem(err, "confirm the payment");
      }
      if (state.status !== "paid" || !state.paymentIntent) return refuse(new ApiError("CONFLICT", `The invoice is not paid on Stripe (${state.status}); there is nothing to refund.`));
      const remaining = state.amountPaid - (committedRows[0]?.amount ?? 0);
      if (remaining <= 0) return refuse(new ApiError("CONFLICT", "The invoice is already fully refunded."));
      const amount = input.amount ?? remaining;
      if (amount > remaining) return refuse(new ApiError("CONFLICT", `At most ${remaining} (minor units) of this invoice can still be refunded.`));
      const refundId = newId("rf");
      const now = clock.now();
      const rows = await outbox.commit(
        "refund.request",
        () => [
          // Stripe says paid: the invoice follows (a webhook may not have arrived yet).
          db.run(sql`UPDATE ${invoices} SET status = 'paid', amount_paid = MAX(amount_paid, ${state.amountPaid}), paid_at = COALESCE(paid_at, ${now}), payment_failed_at = NULL, updated_at = ${now}
            WHERE id = ${invoice.id} AND status IN ('open','uncollectible','paid')`),
          db.run(sql`INSERT INTO ${refunds} (id, office_id, invoice_id, amount, reason, status, requested_by, updated_at)
            SELECT ${refundId}, ${officeId}, ${invoice.id}, ${amount}, ${input.reason}, 'pending', ${actor.actorSub}, ${now}
            WHERE ${committed} + ${amount} <= ${state.amountPaid}`),
        ],
        [{ ...actor, action: "refund.requested", outcome: "succeeded", targetIds: [refundId, invoice.id], details: { amount, reason: input.reason, invoiceWasPaidInternally: invoice.status === "paid" } }],
        () => [db.select().from(refunds).where(eq(refunds.id, refundId))],
        { auditIf: sql`EXISTS (SELECT 1 FROM ${refunds} WHERE id = ${refundId})`, recorded: (r) => (r.at(-1) as unknown[]).length > 0 },
      );
      const pending = (rows.at(-1) as (typeof refunds.$inferSelect)[])[0];
      if (!pending) throw new ApiError("CONFLICT", "Another refund of this invoice was recorded meanwhile; try again.");
      const outcome = await outbox.attempt(`refund:${refundId}`, emptyReport(), refundId, () => outbox.refundOne(work, pending, state).then(() => undefined));
      if (outcome === "retrying") await outbox.schedule(outbox.retries()[0]?.next_at);
      const [latest] = await db.select().from(refunds).where(eq(refunds.id, refundId));
      return { refund: latest ?? pending, remaining: remaining - amount };
    });
  }

  /**
   * Issues a credit note of a finalized invoice (platform_admin, docs/payment-plan.md §8.10): on an
   * open invoice it lowers the amount due, on a paid one it is refunded or credited to the
   * customer's balance. Stripe's state of the invoice is read first; the credit note is recorded
   * `pending` (its bound checked inside that batch), then created on Stripe with its id as the key.
   * Stripe out of reach: it stays pending and the outbox creates it later.
   */
  async creditNote(officeId: string, input: CreditNoteInput, actor: Actor): Promise<OfficeResult<{ creditNote: typeof creditNotes.$inferSelect; creditable: number }>> {
    return this.stripeOperation(officeId, async (outbox) => {
      const db = this.db;
      const [invoiceRows, lineRows, noteRows, refundRows] = await db.batch([
        db.select().from(invoices).where(sql`${invoices.id} = ${input.invoiceId} AND ${invoices.officeId} = ${officeId}`),
        db.select().from(invoiceLines).where(eq(invoiceLines.invoiceId, input.invoiceId)),
        db.select().from(creditNotes).where(sql`${creditNotes.invoiceId} = ${input.invoiceId} AND ${creditNotes.status} IN ('pending','issued')`),
        db.select({ amount: sql<number>`COALESCE(SUM(${refunds.amount}), 0)` }).from(refunds).where(sql`${refunds.invoiceId} = ${input.invoiceId} AND ${refunds.status} IN ('pending','succeeded')`),
      ] as const);
      const invoice = invoiceRows[0];
      const refuse = (error: ApiError) => this.refuseQueued(officeId, actor, "credit_note.request", [input.invoiceId], error);
      if (!invoice) throw new ApiError("NOT_FOUND", "No such invoice for this office.");
      if (invoice.status !== "open" && invoice.status !== "paid") return refuse(new ApiError("CONFLICT", `The invoice is ${invoice.status}; only an open or paid invoice can be credited.`));
      if (invoice.stripeState !== "finalized" || !invoice.stripeInvoiceRef) {
        return refuse(new ApiError("CONFLICT", "The invoice is not on Stripe (not sent yet, or never sent: a zero, carried or written-off total); there is nothing to credit."));
      }
      // The amount: whole, or the sum of per-line amounts, each bounded by what its line has left.
      let amount = input.amount ?? 0;
      if (input.lines) {
        const takenByLine = new Map<string, number>();
        for (const n of noteRows) for (const l of n.lines ?? []) takenByLine.set(l.lineId, (takenByLine.get(l.lineId) ?? 0) + l.amount);
        const seen = new Set<string>();
        amount = 0;
        for (const l of input.lines) {
          const line = lineRows.find((r) => r.id === l.lineId);
          if (!line) return refuse(new ApiError("UNPROCESSABLE", `No line ${l.lineId} on this invoice.`));
          if (seen.has(l.lineId)) return refuse(new ApiError("UNPROCESSABLE", `Line ${l.lineId} is named twice.`));
          seen.add(l.lineId);
          if (line.amount <= 0 || line.kind === "discount" || line.kind === "carried_balance") {
            return refuse(new ApiError("UNPROCESSABLE", `Line ${l.lineId} (${line.kind}) cannot be credited by line; credit an amount of the invoice instead.`));
          }
          const left = line.amount - (takenByLine.get(l.lineId) ?? 0);
          if (l.amount > left) return refuse(new ApiError("CONFLICT", `At most ${left} (minor units) of line ${l.lineId} can still be credited.`));
          amount += l.amount;
        }
      }
      const work = await outbox.readOffice();
      if (!work) throw new ApiError("NOT_FOUND", "No such office.");
      const ring = await dataKeyring(loadConfig(this.env));
      let state;
      try {
        state = await outbox.gateway(work, [], actor.requestId).readInvoice(await openReference(ring, encryptedColumns[1], invoice.id, invoice.stripeInvoiceRef));
      } catch (err) {
        throw this.stripeProblem(err, "read the invoice");
      }
      if (state.status !== "open" && state.status !== "paid") return refuse(new ApiError("CONFLICT", `The invoice is ${state.status} on Stripe; only an open or paid invoice can be credited.`));
      const paid = state.status === "paid";
      if (paid && input.settlement === null) return refuse(new ApiError("CONFLICT", "The invoice is paid: say where the credit goes (`settlement`: `refund` or `customer_balance`)."));
      if (!paid && input.settlement !== null) return refuse(new ApiError("CONFLICT", "The invoice is open: a credit note lowers its amount due; `settlement` applies only to a paid invoice."));
      if (paid && input.settlement === "refund" && !state.paymentIntent) return refuse(new ApiError("CONFLICT", "Nothing was charged for this invoice; credit the customer's balance instead of refunding."));
      const credited = noteRows.reduce((sum, n) => sum + n.amount, 0);
      const postCredited = noteRows.filter((n) => n.status === "pending" || n.settlement === "customer_balance").reduce((sum, n) => sum + (n.settlement === "none" ? 0 : n.amount), 0);
      const amountPaid = paid ? Math.max(invoice.status === "paid" ? invoice.amountPaid : 0, state.amountPaid) : 0;
      const committedRefunds = refundRows[0]?.amount ?? 0;
      // An open invoice's amount due is its total with the tax Stripe computed (a credit note's amount includes its tax).
      const due = payable(invoice);
      const creditable = paid ? amountPaid - committedRefunds - postCredited : due - credited;
      if (creditable <= 0) return refuse(new ApiError("CONFLICT", "Nothing is left to credit on this invoice."));
      if (amount > creditable) return refuse(new ApiError("CONFLICT", `At most ${creditable} (minor units) of this invoice can still be credited.`));
      // An open invoice is left due 0 or at least Stripe's minimum charge (§8.9): Stripe cannot collect less.
      const minimum = minimumCharge(invoice.currency);
      if (!paid && creditable - amount > 0 && creditable - amount < minimum) {
        return refuse(new ApiError("CONFLICT", `This would leave ${creditable - amount} (minor units) due, below Stripe's minimum charge of ${minimum}: credit ${creditable} (all of it) or at most ${creditable - minimum}.`));
      }
      const settlement = input.settlement ?? "none";
      const id = newId("cn");
      const now = clock.now();
      // The bound again inside the batch: what counts now, whatever was recorded since the reads.
      const notes = (filter: SQL) => sql`(SELECT COALESCE(SUM(amount), 0) FROM ${creditNotes} WHERE invoice_id = ${invoice.id} AND ${filter})`;
      const bound = paid
        ? sql`${amountPaid} - (SELECT COALESCE(SUM(amount), 0) FROM ${refunds} WHERE invoice_id = ${invoice.id} AND status IN ('pending','succeeded'))
            - ${notes(sql`settlement <> 'none' AND (status = 'pending' OR (status = 'issued' AND settlement = 'customer_balance'))`)} >= ${amount}`
        : sql`${due} - ${notes(sql`status IN ('pending','issued')`)} >= ${amount}`;
      const rows = await outbox.commit(
        "credit_note.request",
        () => [
          ...(paid && invoice.status === "open"
            ? // Stripe says paid: the invoice follows (a webhook may not have arrived yet).
              [db.run(sql`UPDATE ${invoices} SET status = 'paid', amount_paid = MAX(amount_paid, ${state.amountPaid}), paid_at = COALESCE(paid_at, ${now}), payment_failed_at = NULL, updated_at = ${now} WHERE id = ${invoice.id} AND status IN ('open','uncollectible')`)]
            : []),
          db.run(sql`INSERT INTO ${creditNotes} (id, office_id, invoice_id, amount, lines, reason, memo, settlement, status, requested_by, updated_at)
            SELECT ${id}, ${officeId}, ${invoice.id}, ${amount}, ${input.lines ? JSON.stringify(input.lines) : null}, ${input.reason}, ${input.memo}, ${settlement}, 'pending', ${actor.actorSub}, ${now}
            WHERE ${bound}`),
        ],
        [{ ...actor, action: "credit_note.requested", outcome: "succeeded", targetIds: [id, invoice.id], details: { amount, reason: input.reason, memo: input.memo, settlement, byLine: input.lines !== null, invoiceStatus: state.status } }],
        () => [db.select().from(creditNotes).where(eq(creditNotes.id, id))],
        { auditIf: sql`EXISTS (SELECT 1 FROM ${creditNotes} WHERE id = ${id})`, recorded: (r) => (r.at(-1) as unknown[]).length > 0 },
      );
      const pending = (rows.at(-1) as (typeof creditNotes.$inferSelect)[])[0];
      if (!pending) throw new ApiError("CONFLICT", "Another credit note or refund of this invoice was recorded meanwhile; try again.");
      const outcome = await outbox.attempt(`credit_note:${id}`, emptyReport(), id, () => outbox.creditNotes.issueOne(work, pending).then(() => undefined));
      if (outcome === "retrying") await outbox.schedule(outbox.retries()[0]?.next_at);
      const [latest] = await db.select().from(creditNotes).where(eq(creditNotes.id, id));
      return { creditNote: latest ?? pending, creditable: creditable - amount };
    });
  }

  /**
   * A Stripe billing-portal session for the office's admins (payment methods on Stripe's hosted
   * page; no card data touches this API). Creates the office's Stripe customer if it has none.
   */
  async billingPortal(officeId: string, actor: Actor): Promise<OfficeResult<{ url: string }>> {
    return this.stripeOperation(officeId, async (outbox) => {
      const returnUrl = loadConfig(this.env).BILLING_PORTAL_RETURN_URL;
      if (!returnUrl) throw new ApiError("SERVICE_UNAVAILABLE", "The billing portal is not configured (BILLING_PORTAL_RETURN_URL).");
      const work = await outbox.readOffice();
      if (!work) throw new ApiError("NOT_FOUND", "No such office.");
      let session;
      try {
        const customerId = await outbox.customerId(work, actor.requestId);
        session = await outbox.gateway(work, [], actor.requestId, { return_url: returnUrl }).portalSession(customerId, returnUrl, actor.requestId);
      } catch (err) {
        if (err instanceof StripeCallError && err.code === PORTAL_NOT_CONFIGURED) {
          console.error(JSON.stringify({ level: "error", msg: "stripe has no default billing-portal configuration: operator action needed (npm run stripe:setup; Stripe dashboard: Settings → Billing → Customer portal)", officeId }));
          throw new ApiError(
            "BILLING_PORTAL_NOT_CONFIGURED",
            "The billing portal is not configured on Stripe (no default portal configuration): an operator runs `npm run stripe:setup` and saves the customer portal settings in Stripe's Dashboard (Settings → Billing → Customer portal). Nothing was changed.",
          );
        }
        throw this.stripeProblem(err, "open a billing-portal session");
      }
      // The session URL is a bearer link to the office's payment settings: neither logged nor audited.
      await outbox.commit("billing_portal", () => [], [{ ...actor, action: "billing_portal.session_created", outcome: "succeeded", targetIds: [officeId] }]);
      return { url: session.url };
    });
  }

  /**
   * A hosted Stripe Checkout link (setup mode) where an office admin adds a payment method
   * (docs/payment-plan.md §10); its session id is recorded so only its completion is trusted.
   */
  async paymentSetupSession(officeId: string, actor: Actor): Promise<OfficeResult<{ url: string; expiresAt: string }>> {
    return this.stripeOperation(officeId, async (outbox) => {
      const config = loadConfig(this.env);
      const success = config.PAYMENT_SETUP_SUCCESS_URL ?? config.BILLING_PORTAL_RETURN_URL;
      const cancel = config.PAYMENT_SETUP_CANCEL_URL ?? config.BILLING_PORTAL_RETURN_URL;
      if (!success || !cancel) throw new ApiError("SERVICE_UNAVAILABLE", "Adding a payment method is not configured (PAYMENT_SETUP_SUCCESS_URL / PAYMENT_SETUP_CANCEL_URL or BILLING_PORTAL_RETURN_URL).");
      const work = await outbox.readOffice();
      if (!work) throw new ApiError("NOT_FOUND", "No such office.");
      if (work.office.status === "canceled") throw new ApiError("CONFLICT", "The office is canceled.");
      const [plan] = await this.db.select({ currency: planVersions.currency }).from(planVersions).where(eq(planVersions.id, work.office.planVersionId));
      let session;
      try {
        session = await outbox.paymentMethods.createSetupSession(work, plan?.currency ?? "usd", { success, cancel }, actor.requestId);
      } catch (err) {
        throw this.stripeProblem(err, "open a payment-method setup session");
      }
      await outbox.commit("payment_setup", () => [], [{ ...actor, action: "payment_method.setup_session_created", outcome: "succeeded", targetIds: [officeId], details: { expiresAt: session.expiresAt } }]);
      return session;
    });
  }
}
