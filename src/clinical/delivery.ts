import { sql } from "drizzle-orm";
import type { Config } from "../config";
import { clinicalEvents } from "../db/clinical-events";
import type { Database } from "../db/client";
import * as clock from "../clock";
import { eventPayload } from "./events";
import { SIGNATURE_HEADER, signatureHeader } from "./signature";

/** One queue message: the event's id. Everything else is read from what we stored. */
export type ClinicalMessage = { eventId: string };

export const CLINICAL_QUEUE = "office-billing-clinical-events";
/** Retries stop this long after the first attempt (the event is then `failed`; an admin may replay it). */
export const RETRY_WINDOW_MS = 3 * 24 * 3_600_000;
/** Cloudflare Queues delays a retry by at most 12 hours. */
export const MAX_RETRY_DELAY_SECONDS = 43_200;
/** The receiver has this long to answer. */
export const DELIVERY_TIMEOUT_MS = 10_000;
/** Rows handed to the queue per dispatch (the queue's sendBatch takes at most 100). */
const DISPATCH_BATCH = 100;
/** A queued message older than this may have outlived the queue's retention (4 days): the sweep hands it again. */
const REQUEUE_AFTER_MS = 4 * 24 * 3_600_000;

/** Seconds before retry `n` (n = attempts made so far, from 1): 30 s doubling, capped at 12 hours. */
export function backoffSeconds(attempts: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, 30 * 2 ** Math.max(0, attempts - 1));
}

/** The delivery target, or null when CLINICAL_WEBHOOK_URL is unset (events are then stored, not delivered). */
export function clinicalTarget(config: Pick<Config, "CLINICAL_WEBHOOK_URL" | "CLINICAL_WEBHOOK_SECRET" | "CLINICAL_WEBHOOK_SECRET_PREVIOUS">): { url: string; secrets: string[] } | null {
  if (!config.CLINICAL_WEBHOOK_URL || !config.CLINICAL_WEBHOOK_SECRET) return null;
  return { url: config.CLINICAL_WEBHOOK_URL, secrets: [config.CLINICAL_WEBHOOK_SECRET, ...(config.CLINICAL_WEBHOOK_SECRET_PREVIOUS ? [config.CLINICAL_WEBHOOK_SECRET_PREVIOUS] : [])] };
}

/**
 * Claims pending events not yet handed to the queue (one office's, or every office's for the
 * sweep) and sends one message per event, in each office's sequence order: one UPDATE … RETURNING,
 * one sendBatch. A failed send releases the claim (the sweep or the next operation hands them).
 */
export async function dispatchClinicalEvents(db: Database, queue: Queue<ClinicalMessage>, officeId: string | null, now = clock.now()): Promise<number> {
  const scope = officeId === null ? sql`` : sql`AND office_id = ${officeId}`;
  const claimed = await db.all<{ id: string; office_id: string; seq: number }>(sql`UPDATE ${clinicalEvents} SET queued_at = ${now}
    WHERE id IN (SELECT id FROM ${clinicalEvents} WHERE status = 'pending' ${scope} AND (queued_at IS NULL OR queued_at < ${now - REQUEUE_AFTER_MS}) ORDER BY office_id, seq LIMIT ${DISPATCH_BATCH})
    RETURNING id, office_id, seq`);
  if (claimed.length === 0) return 0;
  claimed.sort((a, b) => (a.office_id === b.office_id ? a.seq - b.seq : a.office_id < b.office_id ? -1 : 1));
  try {
    await queue.sendBatch(claimed.map((r) => ({ body: { eventId: r.id } })));
  } catch (err) {
    await db.run(sql`UPDATE ${clinicalEvents} SET queued_at = NULL WHERE queued_at = ${now} AND id IN (${sql.join(claimed.map((r) => sql`${r.id}`), sql`, `)})`);
    throw err;
  }
  return claimed.length;
}

type Outcome = { eventId: string; result: "delivered" | "retry" | "failed" | "skipped"; delaySeconds?: number; status?: number | null; error?: string };

/**
 * Delivers one event: reads the stored row (a message is only a pointer), skips it when it is not
 * pending (a duplicate message, or delivered already), builds the payload from the allowlist,
 * signs it and POSTs it. A 2xx answer delivers it; anything else is retried with backoff until
 * three days after the first attempt, then the event is `failed`. One UPDATE records the attempt.
 */
export async function deliverClinicalEvent(db: Database, config: Config, eventId: string, fetcher: typeof fetch = fetch): Promise<Outcome> {
  const [row] = await db.select().from(clinicalEvents).where(sql`${clinicalEvents.id} = ${eventId}`);
  if (!row || row.status !== "pending") return { eventId, result: "skipped" };
  const target = clinicalTarget(config);
  if (!target) {
    // The URL was removed after the event was queued: it stays pending, for the sweep once configured.
    await db.run(sql`UPDATE ${clinicalEvents} SET queued_at = NULL, last_error = 'not_configured' WHERE id = ${eventId} AND status = 'pending'`);
    return { eventId, result: "skipped", error: "not_configured" };
  }
  const now = clock.now();
  const payload = eventPayload(row);
  if (!payload) {
    console.error(JSON.stringify({ level: "error", msg: "clinical event not on the allowlist; not sent", eventId, type: row.type }));
    await db.run(sql`UPDATE ${clinicalEvents} SET status = 'failed', last_error = 'payload_not_allowed', last_attempt_at = ${now} WHERE id = ${eventId} AND status = 'pending'`);
    return { eventId, result: "failed", error: "payload_not_allowed" };
  }
  const body = JSON.stringify(payload);
  let status: number | null = null;
  let error: string | null = null;
  try {
    const res = await fetcher(target.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        [SIGNATURE_HEADER]: await signatureHeader(target.secrets, body, Math.floor(now / 1000)),
        "Billing-Event-Id": payload.id,
        "Billing-Event-Type": payload.type,
        "Billing-Sequence": String(payload.sequence),
      },
      body,
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    status = res.status;
    await res.body?.cancel();
    if (!res.ok) error = `http_${res.status}`;
  } catch (err) {
    error = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError") ? "timeout" : "network";
  }
  const attempts = row.attempts + 1;
  const first = row.firstAttemptAt ?? now;
  if (!error) {
    await db.run(sql`UPDATE ${clinicalEvents} SET status = 'delivered', attempts = ${attempts}, first_attempt_at = ${first}, last_attempt_at = ${now}, next_attempt_at = NULL, last_status = ${status}, last_error = NULL, delivered_at = ${now} WHERE id = ${eventId}`);
    return { eventId, result: "delivered", status };
  }
  const left = first + RETRY_WINDOW_MS - now;
  if (left <= 0) {
    console.error(JSON.stringify({ level: "error", msg: "clinical event undelivered for three days; failed (replay it)", eventId, type: row.type, error }));
    await db.run(sql`UPDATE ${clinicalEvents} SET status = 'failed', attempts = ${attempts}, first_attempt_at = ${first}, last_attempt_at = ${now}, next_attempt_at = NULL, last_status = ${status}, last_error = ${error} WHERE id = ${eventId}`);
    return { eventId, result: "failed", status, error };
  }
  const delaySeconds = Math.max(1, Math.min(backoffSeconds(attempts), Math.ceil(left / 1000)));
  await db.run(sql`UPDATE ${clinicalEvents} SET attempts = ${attempts}, first_attempt_at = ${first}, last_attempt_at = ${now}, next_attempt_at = ${now + delaySeconds * 1000}, last_status = ${status}, last_error = ${error} WHERE id = ${eventId}`);
  return { eventId, result: "retry", delaySeconds, status, error };
}
