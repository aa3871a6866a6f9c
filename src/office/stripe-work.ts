import { asc, eq, sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { type Config } from "../config";
import type { Database } from "../db/client";
import { invoiceLines, invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { patients } from "../db/patients";
import { refunds } from "../db/refunds";
import { creditNotes } from "../db/credit-notes";
import { planVersions } from "../db/plans";
import { webhookEvents } from "../db/webhook-events";
import { stripeRequests } from "../db/stripe-requests";
import type { Env } from "../env";
import { encryptedColumns } from "../security/data-keys";
import type { AuditInput } from "./chain-writer";


/**
 * What the office's Stripe work is made of, shared by the outbox (stripe-sync.ts), the webhook
 * events it applies (stripe-events.ts) and the reconciliation (stripe-reconcile.ts).
 */
export type OfficeRow = typeof offices.$inferSelect;
export type InvoiceRow = typeof invoices.$inferSelect;
export type LineRow = typeof invoiceLines.$inferSelect;
export type RefundRow = typeof refunds.$inferSelect;

export const [customerCol, invoiceCol, refundCol, documentsCol, creditNoteCol] = encryptedColumns;

/**
 * What Stripe's invoice should ask for, given our total (§8.9, §8.10): the total, less a credit
 * balance the customer had at finalize (a credit note's `customer_balance`), less what credit notes
 * took off while it was open. Anything else is a difference billing staff look at.
 */
export const expectedAmountDue = (total: number, s: { startingBalance: number; prePaymentCredited: number }) => Math.max(0, Math.max(0, total + Math.min(0, s.startingBalance)) - s.prePaymentCredited);

/** The outbox's actor in the audit trail. */
export const OUTBOX_ACTOR = { actorSub: "system:stripe-outbox", actorRole: "system" } as const;

/** Outbox retries: 30 s, 1 min, 2 min, … capped at one hour, with jitter; a Stripe outage of hours resumes by itself. */
export const OUTBOX_BASE_MS = 30_000;
export const OUTBOX_CAP_MS = 3_600_000;
/** How long a run's lease on the office's Stripe work holds if its holder dies (renewed per item). */
export const LEASE_MS = 5 * 60_000;
/**
 * The statement that sets an invoice's `amountRefunded` from its refunds (docs/payment-plan.md
 * §8.7): those Stripe has (a Stripe id) and that did not fail, pending ones included as Stripe
 * counts them, never above what was paid. Run in the batch of every change to a refund.
 */
export function refundedTotal(db: Database, invoiceId: string, now: number) {
  return db.run(sql`UPDATE ${invoices} SET amount_refunded = MIN(amount_paid,
      (SELECT COALESCE(SUM(amount), 0) FROM ${refunds} WHERE invoice_id = ${invoiceId} AND stripe_refund_index IS NOT NULL AND status IN ('pending','succeeded'))),
      updated_at = ${now} WHERE id = ${invoiceId}`);
}

/** A pending refund is retried for at most this long (Stripe forgets idempotency keys after 24 h). */
export const REFUND_RETRY_WINDOW_MS = 23 * 3_600_000;

/**
 * The Stripe work of an office, as the database states it: open invoices not yet finalized on
 * Stripe (the push), voided invoices whose Stripe copy is still live (the void), pending refunds.
 * Deriving the work from the billing data means nothing that was committed can be lost between
 * the commit and the outbox; the object's storage only keeps each item's retry schedule.
 */
export function workReads(db: Database, officeId: string) {
  const pushable = sql`${invoices.officeId} = ${officeId} AND ${invoices.total} > 0 AND (
    (${invoices.status} = 'open' AND ${invoices.stripeState} IN ('none','draft_created'))
    OR (${invoices.status} = 'void' AND ${invoices.stripeState} IN ('draft_created','finalized')))`;
  return [
    db.select().from(offices).where(eq(offices.id, officeId)),
    db.select().from(invoices).where(pushable).orderBy(asc(invoices.createdAt), asc(invoices.id)),
    db
      .select()
      .from(invoiceLines)
      .where(sql`${invoiceLines.invoiceId} IN (SELECT id FROM ${invoices} WHERE ${pushable} AND ${invoices.status} = 'open')`)
      .orderBy(asc(invoiceLines.invoiceId), asc(invoiceLines.position), asc(invoiceLines.rankFrom)),
    // Refunds still to make on Stripe: pending without a Stripe id (one Stripe has is settled by its events).
    db.select().from(refunds).where(sql`${refunds.officeId} = ${officeId} AND ${refunds.status} = 'pending' AND ${refunds.stripeRefundIndex} IS NULL`).orderBy(asc(refunds.createdAt)),
    db.select({ patientKey: patients.patientKey }).from(patients).where(eq(patients.officeId, officeId)),
    db
      .select()
      .from(webhookEvents)
      .where(sql`${webhookEvents.officeId} = ${officeId} AND ${webhookEvents.status} = 'received'`)
      .orderBy(asc(webhookEvents.stripeCreatedAt), asc(webhookEvents.receivedAt))
      .limit(200),
    db.select({ graceDays: planVersions.graceDays }).from(planVersions).where(sql`${planVersions.id} = (SELECT plan_version_id FROM ${offices} WHERE id = ${officeId})`),
    // Invoices sent by e-mail, still open and not yet overdue: their due dates arm the alarm (§10).
    db
      .select({ id: invoices.id, dueAt: invoices.dueAt })
      .from(invoices)
      .where(sql`${invoices.officeId} = ${officeId} AND ${invoices.status} = 'open' AND ${invoices.collectionMethod} = 'send_invoice' AND ${invoices.dueAt} IS NOT NULL AND ${invoices.paymentFailedAt} IS NULL`)
      .orderBy(asc(invoices.dueAt)),
    // Credit notes still to create on Stripe (§8.10): pending without a Stripe id.
    db.select().from(creditNotes).where(sql`${creditNotes.officeId} = ${officeId} AND ${creditNotes.status} = 'pending' AND ${creditNotes.stripeCreditNoteIndex} IS NULL`).orderBy(asc(creditNotes.createdAt)),
    // When the creates this work may send were first used (the look-up past Stripe's 24 hours,
    // docs/architecture.md): the customer's key and each pushable invoice's, read here rather than
    // in a round trip of their own before each create.
    db
      .select({ key: stripeRequests.idempotencyKey, at: sql<number | null>`MIN(${stripeRequests.finishedAt})` })
      .from(stripeRequests)
      .where(
        sql`${stripeRequests.idempotencyKey} = ${`customer_${officeId}`} OR ${stripeRequests.idempotencyKey} IN (SELECT 'invoice_' || id || '_create' FROM ${invoices} WHERE ${pushable} AND ${invoices.status} = 'open')`,
      )
      .groupBy(stripeRequests.idempotencyKey),
  ] as const;
}

export type EventRow = typeof webhookEvents.$inferSelect;

export type Work = {
  office: OfficeRow;
  invoices: InvoiceRow[];
  lines: LineRow[];
  refunds: RefundRow[];
  patientKeys: string[];
  events: EventRow[];
  graceDays: number;
  /** Open invoices sent by e-mail, not yet overdue, earliest due first (docs/payment-plan.md §10). */
  dueInvoices: { id: string; dueAt: number | null }[];
  /** Credit notes recorded and not yet created on Stripe (§8.10). */
  creditNotes: (typeof creditNotes.$inferSelect)[];
  /** The first use (our clock) of the creates' keys this work may send, null: never used. */
  firstUses: Map<string, number | null>;
};

/** The webhook processor's actor in the audit trail. */
export const WEBHOOK_ACTOR = { actorSub: "system:stripe-webhooks", actorRole: "system" } as const;

export type RetryRow = { item: string; attempts: number; next_at: number; last_error: string | null };

export type SyncReport = { pushed: string[]; held: string[]; voided: string[]; refunded: string[]; failed: string[]; retrying: string[]; events: string[]; changed: { invoiceId: string; from: string; to: string; source: string }[] };

export const emptyReport = (): SyncReport => ({ pushed: [], held: [], voided: [], refunded: [], failed: [], retrying: [], events: [], changed: [] });

/** What the office object lends the outbox: its identity, services and the audited, serialized write. */
export interface OutboxHost {
  readonly officeId: string;
  readonly db: Database;
  readonly config: Config;
  readonly env: Env;
  readonly storage: DurableObjectStorage;
  /** One batch with its audit entries, run in the object's exclusive queue (one writer). */
  commit(
    action: string,
    statements: () => readonly BatchItem<"sqlite">[],
    audit: Omit<AuditInput, "officeId">[],
    trailingReads?: () => readonly BatchItem<"sqlite">[],
    conditional?: { auditIf: SQL; recorded: (results: unknown[]) => boolean },
  ): Promise<unknown[]>;
}
