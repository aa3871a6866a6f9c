import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import type { Env } from "../env";
import { officeObject } from "../office/client";
import * as clock from "../clock";

/** At most this many offices are re-armed per run (each is one Durable Object call). */
export const SWEEP_LIMIT = 500;
/** Work younger than this is the alarm's: the sweep only re-arms work that has sat still. */
export const SWEEP_STALE_MS = 15 * 60_000;

/**
 * The safety net of the Stripe outboxes: offices whose billing data says Stripe work is unsettled
 * (an open invoice not finalized on Stripe, a voided one still live there, a refund not made yet
 * — one Stripe has and is still processing is settled by Stripe's events, not by us — an invoice
 * sent by e-mail past its due date whose dunning has not started: docs/payment-plan.md §10) get
 * their outbox alarm armed again. Normally the alarm was armed by the operation itself; this
 * catches an object that lost it: only work untouched for `SWEEP_STALE_MS` is considered (fresh
 * work belongs to the alarm that its operation armed). Re-arming an armed alarm changes nothing.
 */
export async function sweepStripeWork(db: Database, env: Pick<Env, "OFFICE_BILLING">, now = clock.now()): Promise<{ offices: number; failed: number }> {
  const stale = now - SWEEP_STALE_MS;
  const rows = await db.all<{ office_id: string }>(sql`
    SELECT office_id FROM invoices WHERE total > 0 AND updated_at < ${stale} AND (
      (status = 'open' AND stripe_state IN ('none','draft_created')) OR (status = 'void' AND stripe_state IN ('draft_created','finalized')))
    UNION SELECT office_id FROM refunds WHERE status = 'pending' AND stripe_refund_index IS NULL AND updated_at < ${stale}
    UNION SELECT office_id FROM credit_notes WHERE status = 'pending' AND stripe_credit_note_index IS NULL AND updated_at < ${stale}
    UNION SELECT office_id FROM invoices WHERE status = 'open' AND collection_method = 'send_invoice' AND payment_failed_at IS NULL AND due_at < ${stale}
    LIMIT ${SWEEP_LIMIT}`);
  let failed = 0;
  await Promise.all(
    rows.map(async ({ office_id }) => {
      try {
        await officeObject(env, office_id).kickStripe();
      } catch {
        failed++;
      }
    }),
  );
  return { offices: rows.length, failed };
}
