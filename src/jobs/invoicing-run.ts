import { and, asc, gt, inArray, lte, ne, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { invoices } from "../db/invoices";
import { jobRuns } from "../db/job-runs";
import { offices } from "../db/offices";
import { newId } from "../security/request-id";
import * as clock from "../clock";

export const INVOICING_JOB = "invoicing";
/** Offices read per page when looking for due ones; messages sent per Queue sendBatch. */
export const DUE_PAGE = 1000;
export const QUEUE_BATCH = 100;
/** Messages per second the run sends at most (a queue accepts 5,000/s; this keeps a margin). */
export const SEND_RATE_PER_S = 4000;

/** One queue message: close this office's cycles that ended by `at`. */
export type CloseMessage = { officeId: string; at: number; runKey: string };

/**
 * Offices whose current cycle has ended by `at` (its end instant was fixed in the office's zone
 * when it opened) and, with `endedBy`, by the start of that local date in the office's zone.
 */
export function dueOffices(db: Database, at: number, opts: { afterId?: string; limit?: number; officeIds?: string[]; endedBy?: string } = {}) {
  return db
    .select({ id: offices.id, timeZone: offices.timeZone })
    .from(offices)
    .where(
      and(
        lte(offices.cycleEndAt, at),
        ...(opts.endedBy ? [lte(offices.cycleEnd, opts.endedBy)] : []),
        ne(offices.status, "canceled"),
        gt(offices.id, opts.afterId ?? ""),
        ...(opts.officeIds ? [inArray(offices.id, opts.officeIds)] : []),
      ),
    )
    .orderBy(asc(offices.id))
    .limit(opts.limit ?? DUE_PAGE);
}

/** What a run would invoice for these offices: their current drafts (dry run). */
export function draftsOf(db: Database, officeIds: string[]) {
  return db
    .select({ officeId: invoices.officeId, invoiceId: invoices.id, periodStart: invoices.periodStart, periodEnd: invoices.periodEnd, total: invoices.total, currency: invoices.currency })
    .from(invoices)
    .where(and(inArray(invoices.officeId, officeIds), sql`${invoices.kind} = 'monthly' AND ${invoices.status} = 'draft'`));
}

export type InvoicingRunSummary = { runKey: string; attempt: number; officesDue: number; messages: number };

/**
 * The hourly invoicing run fired by the Cron Trigger: it finds offices whose cycle has ended and
 * fans out one queue message per office (sendBatch of 100); each message is handled by the
 * office's Durable Object. The run is keyed by its scheduled time, so a repeated trigger is
 * another attempt of the same run; closes are idempotent, so re-sent messages change nothing.
 */
export async function runInvoicing(db: Database, queue: Queue<CloseMessage>, scheduledTime: number, cron: string | null): Promise<InvoicingRunSummary> {
  const runKey = new Date(scheduledTime).toISOString();
  const now = clock.now();
  const [claimed, firstPage] = await db.batch([
    db
      .insert(jobRuns)
      .values({ id: newId("run"), job: INVOICING_JOB, runKey, cron, status: "running", startedAt: now })
      .onConflictDoUpdate({
        target: [jobRuns.job, jobRuns.runKey],
        set: { attempts: sql`${jobRuns.attempts} + 1`, status: "running", startedAt: now, finishedAt: null },
      })
      .returning({ id: jobRuns.id, attempts: jobRuns.attempts }),
    dueOffices(db, scheduledTime),
  ]);
  const run = claimed[0]!;
  let officesDue = 0;
  let messages = 0;
  for (let page = firstPage; page.length > 0; page = page.length < DUE_PAGE ? [] : await dueOffices(db, scheduledTime, { afterId: page.at(-1)!.id })) {
    officesDue += page.length;
    const pageStarted = Date.now();
    for (let i = 0; i < page.length; i += QUEUE_BATCH) {
      const chunk = page.slice(i, i + QUEUE_BATCH);
      await queue.sendBatch(chunk.map((o) => ({ body: { officeId: o.id, at: scheduledTime, runKey } })));
      messages += chunk.length;
    }
    // Pace the sends: a full page of 1,000 takes at least 250 ms.
    const minimumMs = (page.length / SEND_RATE_PER_S) * 1000;
    const spent = Date.now() - pageStarted;
    if (spent < minimumMs) await new Promise((r) => setTimeout(r, minimumMs - spent));
  }
  const summary: InvoicingRunSummary = { runKey, attempt: run.attempts, officesDue, messages };
  await db.update(jobRuns).set({ status: "succeeded", finishedAt: clock.now(), summary }).where(sql`${jobRuns.id} = ${run.id}`);
  return summary;
}
