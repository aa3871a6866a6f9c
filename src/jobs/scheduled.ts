import { loadConfig } from "../config";
import { loggableError } from "../db/errors";
import { createDatabase, type Database } from "../db/client";
import type { Env } from "../env";
import { runInvoicing } from "./invoicing-run";
import { sweepStripeWork } from "./stripe-sweep";
import { runReconciliation } from "./reconcile";
import { checkpointAuditChains } from "./audit-checkpoints";
import { clinicalTarget, dispatchClinicalEvents } from "../clinical/delivery";

/**
 * Hands the clinical events no office object handed (its dispatch failed, or the URL was set
 * later) to the delivery queue: at most ten batches of 100 an hour. `null`: no URL, nothing sent.
 */
export async function sweepClinicalEvents(db: Database, env: Env): Promise<number | null> {
  if (!clinicalTarget(loadConfig(env))) return null;
  let handed = 0;
  for (let i = 0; i < 10; i++) {
    const n = await dispatchClinicalEvents(db, env.CLINICAL_EVENTS_QUEUE, null);
    handed += n;
    if (n < 100) break;
  }
  return handed;
}

/** Cron expression of the hourly invoicing run: cycles close at local midnight in each office's zone. */
export const CRON_INVOICING = "5 * * * *";
/** Daily reconciliation with Stripe (missed webhooks) and the audit chains' checkpoints, at a quiet hour. */
export const CRON_RECONCILIATION = "30 4 * * *";

/**
 * Every Cron Trigger of wrangler.toml's [triggers] and the job it runs. A test checks that this
 * map and wrangler.toml list the same crons, so no job is handled in code but never triggered.
 */
export const cronJobs: Record<string, (db: Database, controller: ScheduledController, env: Env) => Promise<Record<string, unknown>>> = {
  [CRON_INVOICING]: async (db, controller, env) => {
    const summary = await runInvoicing(db, env.INVOICING_QUEUE, controller.scheduledTime, controller.cron);
    const stripe = await sweepStripeWork(db, env);
    const clinical = await sweepClinicalEvents(db, env);
    return { job: "invoicing", ...summary, stripeSweep: stripe, clinicalEvents: clinical };
  },
  [CRON_RECONCILIATION]: async (db, controller, env) => {
    const report = await runReconciliation(db, env);
    const audit = await checkpointAuditChains(db, env, controller.scheduledTime);
    return {
      job: "reconciliation",
      offices: report.offices,
      checked: report.checked,
      changed: report.changed,
      failed: report.failed.length,
      auditCheckpoints: audit.checkpoints,
      auditCheckpointsFailed: audit.failed,
    };
  },
};

export async function handleScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const job = cronJobs[controller.cron];
  if (!job) {
    console.error(JSON.stringify({ level: "error", msg: "scheduled: no job for cron", cron: controller.cron }));
    throw new Error(`no job is configured for cron "${controller.cron}"`);
  }
  let summary: Record<string, unknown>;
  try {
    summary = await job(createDatabase(loadConfig(env)), controller, env);
  } catch (err) {
    console.error(JSON.stringify({ level: "error", msg: "scheduled job failed", cron: controller.cron, error: loggableError(err) }));
    throw err;
  }
  console.log(JSON.stringify({ level: "info", msg: "scheduled job done", cron: controller.cron, ...summary }));
}
