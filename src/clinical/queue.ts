import { loadConfig } from "../config";
import { createDatabase } from "../db/client";
import type { Env } from "../env";
import { deliverClinicalEvent, type ClinicalMessage } from "./delivery";

/**
 * Queue consumer of the clinical events: one delivery per message, one after another (a batch is
 * in the offices' sequence order as dispatched). A failed delivery is retried by the queue with
 * the backoff the attempt recorded; an error of our own (the database unreachable) is retried
 * after a minute without counting as an attempt.
 */
export async function handleClinicalBatch(batch: MessageBatch<ClinicalMessage>, env: Env, fetcher: typeof fetch = fetch): Promise<void> {
  const config = loadConfig(env);
  const db = createDatabase(config);
  for (const message of batch.messages) {
    try {
      const outcome = await deliverClinicalEvent(db, config, message.body.eventId, fetcher);
      if (outcome.result === "retry") message.retry({ delaySeconds: outcome.delaySeconds });
      else message.ack();
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "clinical event delivery could not run; retrying", eventId: message.body.eventId, error: err instanceof Error ? err.name : "unknown" }));
      message.retry({ delaySeconds: 60 });
    }
  }
}
