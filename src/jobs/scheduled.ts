import { loadConfig } from "../config";
import { createDatabase } from "../db/client";
import type { Env } from "../env";
import { runInvoicing } from "./invoicing-run";

/** Cron expressions of wrangler.toml's [triggers], and the job each one runs. */
export const CRON_INVOICING = "5 * * * *";

export async function handleScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const config = loadConfig(env);
  const db = createDatabase(config);
  switch (controller.cron) {
    case CRON_INVOICING: {
      const summary = await runInvoicing(db, controller.scheduledTime, controller.cron);
      console.log(JSON.stringify({ level: "info", msg: "invoicing run", runKey: summary.runKey, attempt: summary.attempt, officesDue: summary.officesDue.length }));
      return;
    }
    default:
      console.error(JSON.stringify({ level: "error", msg: "scheduled: no job for cron", cron: controller.cron }));
      throw new Error(`no job is configured for cron "${controller.cron}"`);
  }
}
