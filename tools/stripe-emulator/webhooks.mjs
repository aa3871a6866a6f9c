// Events and their webhook deliveries; GET /v1/events/:id.
import { createHmac } from "node:crypto";
import { API_VERSION, LEAF, clone, expansions, newId, notFound } from "./common.mjs";

/**
 * Stripe's retries of a failed delivery. In sandboxes (every key the emulator takes is a test
 * key) Stripe "retries three times over a few hours"; live mode would retry for up to 3 days with
 * an exponential backoff. Delays after the previous attempt, in ms of the emulator's clock.
 */
export const SANDBOX_RETRY_DELAYS_MS = [3_600_000, 2 * 3_600_000, 4 * 3_600_000];

/**
 * @param {{ app: object, webhookRetryDelaysMs?: number[] }} opts
 * app: { state, config, clock, changed, isClosed }
 */
export function createWebhooks(app, { webhookRetryDelaysMs = SANDBOX_RETRY_DELAYS_MS } = {}) {
  const { state, config, clock } = app;

  /** Stores an event (with `object` as it is now) and delivers it when webhooks are on. */
  function emit(type, object, ctx, extra = {}) {
    const event = {
      id: newId("evt"),
      object: "event",
      api_version: API_VERSION,
      created: clock.now(),
      data: { object: clone(object), ...extra },
      livemode: false,
      pending_webhooks: config.webhookUrl && config.webhookSecret ? 1 : 0,
      request: { id: ctx?.requestId ?? null, idempotency_key: ctx?.idempotencyKey ?? null },
      type,
    };
    state.events.set(event.id, event);
    app.changed();
    if (config.webhookUrl && config.webhookSecret) deliver(event, config.webhookUrl, config.webhookSecret, ctx?.resumed);
    return event;
  }

  /**
   * Posts an event to the webhook URL; a failed attempt is retried after each of
   * `webhookRetryDelaysMs` on the emulator's clock. Work resumed from the state file (`patient`)
   * retries 8 times from 250 ms, doubling (about a minute), as the receiver may still be starting.
   */
  function deliver(event, url, secret, patient = false) {
    const record = { event_id: event.id, type: event.type, url, attempts: [], delivered: false, done: false };
    state.webhooks.push(record);
    const payload = JSON.stringify(event, null, 2);
    const attempt = async (n) => {
      const t = clock.now();
      const sig = createHmac("sha256", secret).update(`${t}.${payload}`).digest("hex");
      let status = null;
      let error = null;
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "stripe-signature": `t=${t},v1=${sig}`,
          },
          body: payload,
          signal: AbortSignal.timeout(5000),
        });
        status = res.status;
        await res.arrayBuffer().catch(() => {});
      } catch (e) {
        error = String(e?.message ?? e);
      }
      record.attempts.push({ at: clock.nowMs(), status, error });
      const retries = patient ? 8 : webhookRetryDelaysMs.length;
      if (status !== null && status >= 200 && status < 300) {
        record.delivered = true;
        record.done = true;
        if (event.data?.object?.object === "invoice") {
          const inv = state.invoices.get(event.data.object.id);
          if (inv) inv.webhooks_delivered_at = clock.now();
        }
        app.changed();
      } else if (app.isClosed()) {
        // stays pending: with a state file, delivered again on the next start
      } else if (n < retries) {
        record.next_attempt_at = clock.nowMs() + (patient ? 250 * 2 ** n : webhookRetryDelaysMs[n]);
        clock.after(patient ? 250 * 2 ** n : webhookRetryDelaysMs[n], () => attempt(n + 1));
      } else {
        record.done = true;
        record.next_attempt_at = null;
        app.changed();
      }
    };
    attempt(0);
  }

  return { emit, deliver };
}

export function registerEvents({ route, state }) {
  route("GET", "/v1/events/:id", { expand: [LEAF] }, (p, { id }) => {
    expansions(p);
    const e = state.events.get(id);
    if (!e) throw notFound("event", id);
    return clone(e);
  });
}
