import type { Env } from "../env";
import { officeObject } from "../office/client";
import type { CloseMessage } from "./invoicing-run";

/** The invoicing job's actor in the audit trail. */
export const JOB_ACTOR = { actorSub: "system:invoicing", actorRole: "system" } as const;

/**
 * Queue consumer: each message closes one office's ended cycles through its Durable Object.
 * A failed close is retried by the queue (and lands in the dead-letter queue after max_retries);
 * closes are idempotent, so a redelivered message changes nothing.
 */
export async function handleInvoicingBatch(batch: MessageBatch<CloseMessage>, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      const { officeId, at, runKey } = message.body;
      try {
        await officeObject(env, officeId).closeCycles(at, { ...JOB_ACTOR, requestId: `run:${runKey}` });
        message.ack();
      } catch (err) {
        console.error(JSON.stringify({ level: "error", msg: "close failed; will retry", officeId, runKey, error: err instanceof Error ? err.name : "unknown" }));
        message.retry({ delaySeconds: Math.min(300, 10 * 2 ** message.attempts) });
      }
    }),
  );
}
