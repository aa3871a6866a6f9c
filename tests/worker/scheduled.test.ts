import { createScheduledController, env } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { jobRuns } from "../../src/db/job-runs";
import worker from "../../src/index";
import { INVOICING_JOB } from "../../src/jobs/invoicing-run";
import { CRON_INVOICING } from "../../src/jobs/scheduled";
import { seedOffice, testDb } from "../harness/seed";

describe("scheduled(): the invoicing Cron Trigger", () => {
  it("records the run and finds the offices whose cycle has ended in their own time zone", async () => {
    const db = testDb();
    // 2026-12-01T03:30Z is 22:30 on Nov 30 in New York but 04:30 on Dec 1 in Berlin.
    const scheduledTime = Date.UTC(2026, 11, 1, 3, 30);
    const newYork = await seedOffice(db, { timeZone: "America/New_York", cycleEnd: "2026-12-01" });
    const berlin = await seedOffice(db, { timeZone: "Europe/Berlin", cycleEnd: "2026-12-01" });
    const later = await seedOffice(db, { timeZone: "Pacific/Kiritimati", cycleStart: "2026-11-15", cycleEnd: "2026-12-15" });

    const controller = createScheduledController({ cron: CRON_INVOICING, scheduledTime });
    await worker.scheduled(controller, env);

    const runKey = new Date(scheduledTime).toISOString();
    const [run] = await db.select().from(jobRuns).where(and(eq(jobRuns.job, INVOICING_JOB), eq(jobRuns.runKey, runKey)));
    expect(run).toMatchObject({ status: "succeeded", attempts: 1, cron: CRON_INVOICING });
    const due = (run!.summary as { officesDue: string[] }).officesDue;
    expect(due).toContain(berlin.id);
    expect(due).not.toContain(newYork.id);
    expect(due).not.toContain(later.id);
  });

  it("can be re-run: the same trigger is a second attempt of one run, not a second run", async () => {
    const db = testDb();
    const scheduledTime = Date.UTC(2031, 0, 1, 5, 5);
    const controller = createScheduledController({ cron: CRON_INVOICING, scheduledTime });
    await worker.scheduled(controller, env);
    await worker.scheduled(controller, env);
    const runs = await db.select().from(jobRuns).where(eq(jobRuns.runKey, new Date(scheduledTime).toISOString()));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("fails loudly on a cron with no job", async () => {
    const controller = createScheduledController({ cron: "0 0 * * *", scheduledTime: Date.now() });
    await expect(worker.scheduled(controller, env)).rejects.toThrow(/no job is configured/);
  });
});
