import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import type { Env } from "../env";
import { officeObject } from "../office/client";
import * as clock from "../clock";

/** Offices reconciled per daily run (each is one Durable Object call; Stripe reads are rate limited there). */
export const RECONCILE_LIMIT = 900;
/** An invoice changed within this time may still have its webhook in flight: the next run looks at it. */
export const RECONCILE_MIN_AGE_MS = 3_600_000;
/**
 * A settled (paid, void) pushed invoice is compared with Stripe after each change to it: the daily
 * run visits offices with one changed in this window (three runs' worth), and the office's object
 * skips those it already found agreeing at their current version.
 */
export const RECONCILE_SETTLED_LOOKBACK_MS = 3 * 86_400_000;

export type ReconciliationReport = {
  offices: number;
  checked: number;
  changed: { officeId: string; invoiceId: string; from: string; to: string }[];
  failed: { officeId: string; invoiceId: string | null }[];
};

/** Reconciles these offices through their objects, a few at a time. */
export async function reconcileOffices(env: Pick<Env, "OFFICE_BILLING">, officeIds: string[], concurrency = 10): Promise<ReconciliationReport> {
  const report: ReconciliationReport = { offices: officeIds.length, checked: 0, changed: [], failed: [] };
  const queue = [...officeIds];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      for (let officeId = queue.shift(); officeId; officeId = queue.shift()) {
        try {
          const r = await officeObject(env, officeId).reconcileStripe();
          report.checked += r.checked;
          report.changed.push(...r.changed.map((c) => ({ officeId, invoiceId: c.invoiceId, from: c.from, to: c.to })));
          report.failed.push(...r.failed.map((invoiceId) => ({ officeId, invoiceId })));
        } catch {
          report.failed.push({ officeId, invoiceId: null });
        }
      }
    }),
  );
  return report;
}

/**
 * The daily reconciliation (Cron Trigger): every office with an invoice that is open on our side
 * and known to Stripe, pushed and never confirmed, or pushed and settled (paid, void) and changed
 * in the last three days, is compared with Stripe. Offices are taken
 * least recently checked first (by their invoices' last update), so a run cut short by the limit
 * is continued by the next. Invoices changed in the last hour are left for the next run (their
 * webhooks may still be on the way). It reports what it changed.
 */
export async function runReconciliation(db: Database, env: Pick<Env, "OFFICE_BILLING">, now = clock.now()): Promise<ReconciliationReport> {
  const rows = await db.all<{ office_id: string }>(sql`
    SELECT office_id FROM invoices
    WHERE stripe_invoice_ref IS NOT NULL AND updated_at < ${now - RECONCILE_MIN_AGE_MS}
      AND (status IN ('open','uncollectible') OR stripe_state = 'draft_created' OR (status IN ('paid','void') AND updated_at >= ${now - RECONCILE_SETTLED_LOOKBACK_MS}))
    GROUP BY office_id ORDER BY MIN(updated_at) LIMIT ${RECONCILE_LIMIT}`);
  return reconcileOffices(env, rows.map((r) => r.office_id));
}
