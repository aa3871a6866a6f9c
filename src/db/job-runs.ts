import { integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { epochMs } from "./columns";

/**
 * One row per scheduled job run, unique by job and run key (the scheduled time), so a cron that
 * fires twice, or a run that is repeated, is recognised and every job can be re-run safely.
 */
export const jobRuns = sqliteTable(
  "job_runs",
  {
    id: text("id").primaryKey(),
    job: text("job").notNull(),
    runKey: text("run_key").notNull(),
    cron: text("cron"),
    status: text("status", { enum: ["running", "succeeded", "failed"] }).notNull(),
    attempts: integer("attempts").notNull().default(1),
    summary: text("summary", { mode: "json" }).$type<Record<string, unknown>>(),
    startedAt: epochMs("started_at").notNull(),
    finishedAt: epochMs("finished_at"),
  },
  (t) => [uniqueIndex("job_runs_job_key_uq").on(t.job, t.runKey)],
);
