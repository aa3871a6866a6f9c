import { eq, sql } from "drizzle-orm";
import { localDate } from "../billing/calendar";
import type { Database } from "../db/client";
import { jobRuns } from "../db/job-runs";
import { offices } from "../db/offices";
import { newId } from "../security/request-id";

export const INVOICING_JOB = "invoicing";

export type InvoicingRunSummary = {
  runKey: string;
  attempt: number;
  officesScanned: number;
  officesDue: string[];
};

/**
 * The invoicing run fired by the Cron Trigger. It is keyed by its scheduled time, so a repeated
 * delivery of the same trigger (or a manual re-run) is recorded as another attempt of the same
 * run rather than as a second run. An office is due when its current cycle has ended in the
 * office's own time zone. Closing each due office (through its Durable Object) arrives with the
 * billing engine; this run records which offices are due.
 */
export async function runInvoicing(db: Database, scheduledTime: number, cron: string | null): Promise<InvoicingRunSummary> {
  const runKey = new Date(scheduledTime).toISOString();
  const now = Date.now();
  // One round trip: claim the run and read the candidate offices. Local "today" is at most one
  // day ahead of UTC, so offices whose cycle ends later than UTC tomorrow cannot be due.
  const utcTomorrow = new Date(scheduledTime + 86_400_000).toISOString().slice(0, 10);
  const [claimed, candidates] = await db.batch([
    db
      .insert(jobRuns)
      .values({ id: newId("run"), job: INVOICING_JOB, runKey, cron, status: "running", startedAt: now })
      .onConflictDoUpdate({
        target: [jobRuns.job, jobRuns.runKey],
        set: { attempts: sql`${jobRuns.attempts} + 1`, status: "running", startedAt: now, finishedAt: null },
      })
      .returning({ id: jobRuns.id, attempts: jobRuns.attempts }),
    db
      .select({ id: offices.id, timeZone: offices.timeZone, cycleEnd: offices.cycleEnd })
      .from(offices)
      .where(sql`${offices.status} != 'canceled' AND ${offices.cycleEnd} <= ${utcTomorrow}`),
  ]);
  const run = claimed[0]!;
  const officesDue = candidates.filter((o) => o.cycleEnd <= localDate(scheduledTime, o.timeZone)).map((o) => o.id);
  const summary: InvoicingRunSummary = { runKey, attempt: run.attempts, officesScanned: candidates.length, officesDue };
  await db.update(jobRuns).set({ status: "succeeded", finishedAt: Date.now(), summary }).where(eq(jobRuns.id, run.id));
  return summary;
}
