import { eq, sql } from "drizzle-orm";
import { storedBasis } from "./invoice-tax";
import { payable } from "../stripe/invoice-tax";
import { invoices } from "../db/invoices";
import { decideFromStripe, type InvoiceStatus } from "../billing/payments";
import { dataKeyring, openReference } from "../security/data-keys";
import { StripeCallError, type StripeInvoiceState } from "../stripe/gateway";
import * as clock from "../clock";

import type { StripeEvents } from "./stripe-events";
import { StripeRefunds } from "./stripe-refunds";
import type { StripeOutbox } from "./stripe-sync";
import { emptyReport, expectedAmountDue, invoiceCol, OUTBOX_ACTOR, type InvoiceRow, type SyncReport } from "./stripe-work";

/**
 * The reconciliation of one office's pushed invoices with Stripe (docs/payment-plan.md §9.5):
 * run by the office's outbox, repairs written through the host's audited write.
 */
export class StripeReconciliation {
  constructor(
    private readonly outbox: StripeOutbox,
    private readonly events: StripeEvents,
  ) {}

  private get host() {
    return this.outbox.host;
  }

  /**
   * Reconciliation: every pushed invoice of this office (open, paid, void, uncollectible) is
   * compared with Stripe's own object, and ours is repaired to Stripe's, audited
   * (`stripe.reconciled`). Stripe ahead of ours (a missed webhook) moves ours forward; ours
   * contradicting Stripe (a status or paid amount no Stripe object supports: an event that should
   * never have been applied) is set back to Stripe's state and logged at error level. Open and
   * uncollectible invoices, and pushes never confirmed, are compared at every run; a settled one
   * (paid, void) each time it changed since it was last found to agree with Stripe (the object's
   * storage remembers that). Invoices the outbox still owes Stripe (a void not yet sent) and
   * failed pushes are left to the outbox and billing staff.
   */
  run(): Promise<SyncReport & { checked: number }> {
    return this.outbox.serialized(async () => {
      const report = emptyReport();
      let checked = 0;
      if (!this.host.config.STRIPE_SECRET_KEY) return { ...report, checked };
      const work = await this.outbox.readWork();
      if (!work) return { ...report, checked };
      const db = this.host.db;
      const storage = this.host.storage.sql;
      const pushed = await db
        .select()
        .from(invoices)
        .where(
          sql`${invoices.officeId} = ${this.host.officeId} AND ${invoices.stripeInvoiceRef} IS NOT NULL AND ${invoices.stripeState} <> 'failed'
            AND NOT (${invoices.status} = 'void' AND ${invoices.stripeState} IN ('draft_created','finalized'))`,
        );
      const verified = new Map(storage.exec<{ invoice_id: string; updated_at: number }>("SELECT invoice_id, updated_at FROM stripe_verified").toArray().map((r) => [r.invoice_id, r.updated_at]));
      const candidates = pushed.filter((i) => i.status === "open" || i.status === "uncollectible" || i.stripeState === "draft_created" || verified.get(i.id) !== i.updatedAt);
      const ring = await dataKeyring(this.host.config);
      for (const invoice of candidates) {
        checked++;
        const requestId = `reconcile:${invoice.id}`;
        try {
          const current = await this.outbox.gateway(work, [], requestId).readInvoice(await openReference(ring, invoiceCol, invoice.id, invoice.stripeInvoiceRef!));
          const ours = invoice.status as InvoiceStatus;
          // A push completed by Stripe's `invoice.finalized` (§9.2) never read its tax back: read here (§11.6).
          const tax = invoice.taxAmount === null && invoice.stripeState !== "failed" ? this.outbox.taxes.readBack(invoice, storedBasis(invoice), current) : null;
          if (tax) {
            await this.host.commit(
              "reconcile.tax",
              () => [db.run(sql`UPDATE ${invoices} SET tax_amount = ${tax.taxAmount}, total_including_tax = ${tax.totalIncludingTax} WHERE id = ${invoice.id} AND tax_amount IS NULL`)],
              [{ ...OUTBOX_ACTOR, requestId, action: "stripe.tax_read_back", outcome: "succeeded", targetIds: [invoice.id], details: { taxAmount: tax.taxAmount } }],
            );
            invoice.taxAmount = tax.taxAmount;
            invoice.totalIncludingTax = tax.totalIncludingTax;
          }
          // §8.9: what we send is due exactly its total. Stripe due otherwise means a balance on the
          // customer at Stripe (set by hand in the Dashboard): billing staff look; nothing is repaired.
          if (current.status !== "draft" && current.status !== "void" && current.amountDue !== expectedAmountDue(payable(invoice), current)) {
            console.error(JSON.stringify({ level: "error", msg: "stripe amount due differs from our total (a customer balance at Stripe?)", officeId: this.host.officeId, invoiceId: invoice.id, ours: payable(invoice), stripeAmountDue: current.amountDue }));
          }
          // Credit notes made at Stripe whose events never reached us (§8.10): recorded; compared again next run.
          if (current.status !== "draft" && (await this.outbox.creditNotes.catchUp(work, invoice.id, current, requestId))) continue;
          const repair = reconcileInvoice(invoice, current);
          if (!repair) {
            if (ours === "paid" || ours === "void") this.markVerified(invoice.id, invoice.updatedAt);
            continue;
          }
          const now = clock.now();
          const statements =
            repair.kind === "forward"
              ? this.events.moveInvoice(invoice, repair.to, { amountPaid: current.amountPaid }, now)
              : repair.kind === "contradiction"
                ? [
                    db.run(sql`UPDATE ${invoices} SET status = ${repair.to}, amount_paid = ${repair.amountPaid}, amount_refunded = MIN(amount_refunded, ${repair.amountPaid}),
                      paid_at = CASE WHEN ${repair.to} = 'paid' THEN COALESCE(paid_at, ${now}) ELSE NULL END,
                      voided_at = CASE WHEN ${repair.to} = 'void' THEN COALESCE(voided_at, ${now}) ELSE NULL END,
                      stripe_state = ${repair.stripeState}, updated_at = ${now}
                      WHERE id = ${invoice.id} AND status = ${ours} AND updated_at = ${invoice.updatedAt}`),
                  ]
                : [];
          if (repair.finalizedOnStripe) statements.push(db.run(sql`UPDATE ${invoices} SET stripe_state = 'finalized', updated_at = ${now} WHERE id = ${invoice.id} AND stripe_state = 'draft_created'`));
          if (repair.kind === "contradiction") {
            console.error(JSON.stringify({ level: "error", msg: "invoice contradicted Stripe; repaired to Stripe's state", officeId: this.host.officeId, invoiceId: invoice.id, from: ours, to: repair.to, amountPaid: invoice.amountPaid, stripeAmountPaid: current.amountPaid, stripeStatus: current.status }));
          }
          // A repair is a compare-and-set on the version read: audited only if it was the one written.
          const contradiction = repair.kind === "contradiction" ? repair : null;
          const results = await this.host.commit(
            "reconcile",
            () => statements,
            [
              {
                ...OUTBOX_ACTOR,
                requestId,
                action: "stripe.reconciled",
                outcome: "succeeded",
                targetIds: [invoice.id],
                details: {
                  from: ours,
                  to: repair.kind === "stripe_state" ? ours : repair.to,
                  stripeStatus: current.status,
                  stripeStateRepaired: repair.finalizedOnStripe,
                  ...(contradiction ? { contradiction: true, amountPaidFrom: invoice.amountPaid, amountPaidTo: contradiction.amountPaid } : {}),
                },
              },
            ],
            contradiction ? () => [db.select({ updatedAt: invoices.updatedAt }).from(invoices).where(eq(invoices.id, invoice.id))] : undefined,
            contradiction
              ? {
                  auditIf: sql`EXISTS (SELECT 1 FROM ${invoices} WHERE id = ${invoice.id} AND updated_at = ${now} AND status = ${contradiction.to})`,
                  recorded: (r) => (r.at(-1) as { updatedAt: number }[])[0]?.updatedAt === now,
                }
              : undefined,
          );
          if (contradiction && (results.at(-1) as { updatedAt: number }[] | undefined)?.[0]?.updatedAt !== now) continue; // changed meanwhile: the next run compares it again
          if (repair.kind !== "stripe_state") {
            if (ours !== repair.to) report.changed.push({ invoiceId: invoice.id, from: ours, to: repair.to, source: "reconciliation" });
            await this.events.officeStatus(work, "settled", requestId, { invoiceId: invoice.id, event: "reconciliation" });
          }
          // Now as Stripe has it: remembered as agreeing at its new version.
          const [after] = await db.select({ status: invoices.status, updatedAt: invoices.updatedAt }).from(invoices).where(eq(invoices.id, invoice.id));
          if (after && (after.status === "paid" || after.status === "void") && (repair.kind === "stripe_state" || after.status === repair.to)) this.markVerified(invoice.id, after.updatedAt);
        } catch (err) {
          // Stripe or the database did not answer: tomorrow's run (or a webhook) catches up.
          console.error(JSON.stringify({ level: "error", msg: "reconciliation of an invoice failed", officeId: this.host.officeId, invoiceId: invoice.id, error: err instanceof StripeCallError ? err.code : err instanceof Error ? err.name : "error" }));
          report.failed.push(invoice.id);
        }
      }
      // Refunds Stripe is still processing, in case their settling event was missed (§9.6).
      checked += await new StripeRefunds(this.outbox, this.events).reconcilePending(work, report);
      await this.events.dunning(work);
      return { ...report, checked };
    });
  }

  /** Remembers that a settled invoice, as of its `updatedAt`, agrees with Stripe. */
  private markVerified(invoiceId: string, updatedAt: number) {
    this.host.storage.sql.exec(
      "INSERT INTO stripe_verified (invoice_id, updated_at) VALUES (?, ?) ON CONFLICT (invoice_id) DO UPDATE SET updated_at = excluded.updated_at",
      invoiceId,
      updatedAt,
    );
  }
}

export type Repair =
  /** Stripe is ahead of ours (a missed webhook): ours moves forward. */
  | { kind: "forward"; to: InvoiceStatus; finalizedOnStripe: boolean }
  /** Ours says what no Stripe object supports: set to Stripe's status and paid amount (≤ our total). */
  | { kind: "contradiction"; to: InvoiceStatus; amountPaid: number; stripeState: "finalized" | "voided" | "draft_created"; finalizedOnStripe: boolean }
  /** Only the record of the push is behind (Stripe finalized a draft we created). */
  | { kind: "stripe_state"; finalizedOnStripe: true };

/**
 * How a pushed invoice of ours compares with Stripe's object (docs/payment-plan.md §9.5); null
 * when they agree. Stripe's draft stands for `open` here (ours is finalized; the push resumes).
 */
export function reconcileInvoice(invoice: Pick<InvoiceRow, "status" | "stripeState" | "total" | "totalIncludingTax" | "amountPaid">, current: Pick<StripeInvoiceState, "status" | "amountPaid">): Repair | null {
  const ours = invoice.status as InvoiceStatus;
  const finalizedOnStripe = current.status !== "draft" && invoice.stripeState === "draft_created";
  const theirs: InvoiceStatus = current.status === "draft" ? "open" : current.status;
  const paid = Math.min(payable(invoice), Math.max(0, current.amountPaid));
  if (ours === "draft") return null; // never pushed: not Stripe's to say
  if (ours === theirs && (ours !== "paid" || invoice.amountPaid === paid)) return finalizedOnStripe ? { kind: "stripe_state", finalizedOnStripe } : null;
  const decision = decideFromStripe(ours, theirs);
  if (decision.kind === "apply") return { kind: "forward", to: decision.to, finalizedOnStripe };
  // A void here that Stripe never saw as void: the Stripe copy was abandoned as a draft (fine), else ours is wrong.
  if (ours === "void" && invoice.stripeState === "abandoned" && current.status === "draft") return null;
  return {
    kind: "contradiction",
    to: theirs,
    amountPaid: theirs === "paid" ? paid : 0,
    stripeState: theirs === "void" ? "voided" : current.status === "draft" ? "draft_created" : "finalized",
    finalizedOnStripe: false,
  };
}
