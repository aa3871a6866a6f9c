import { createApp } from "./app";
import type { Env } from "./env";
import type { CloseMessage } from "./jobs/invoicing-run";
import { handleInvoicingBatch } from "./jobs/queue";
import { CLINICAL_QUEUE, type ClinicalMessage } from "./clinical/delivery";
import { handleClinicalBatch } from "./clinical/queue";
import { handleScheduled } from "./jobs/scheduled";

export { OfficeBilling } from "./office/office-billing";
export { PlatformAudit } from "./office/platform-audit";
export { StripeRateLimiter } from "./stripe/rate-limiter";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
  // Awaited, so a failing run is reported as a failed cron invocation.
  scheduled: (controller, env) => handleScheduled(controller, env),
  // Two queues, one consumer each: told apart by the queue's name.
  queue: (batch, env) =>
    batch.queue === CLINICAL_QUEUE ? handleClinicalBatch(batch as MessageBatch<ClinicalMessage>, env) : handleInvoicingBatch(batch as MessageBatch<CloseMessage>, env),
} satisfies ExportedHandler<Env, CloseMessage | ClinicalMessage>;
