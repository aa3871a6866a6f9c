import Stripe from "stripe";
import { z } from "zod";
import { STRIPE_API_VERSION } from "./client";

/** The API version events must be rendered with: the pinned one (an endpoint's `api_version`, set by `npm run stripe:setup`). */
export const WEBHOOK_API_VERSION = STRIPE_API_VERSION;

/** Stripe's signature tolerance: a signed timestamp older (or further ahead) than this is refused. */
export const WEBHOOK_TOLERANCE_S = 300;

export const handledEventTypes = [
  "invoice.finalized",
  "invoice.paid",
  "invoice.payment_succeeded",
  "invoice.payment_failed",
  "invoice.payment_action_required",
  "invoice.voided",
  "invoice.marked_uncollectible",
  "charge.refunded",
  "charge.refund.updated",
  "refund.created",
  "refund.updated",
  "refund.failed",
  "credit_note.created",
  "credit_note.updated",
  "credit_note.voided",
  "charge.dispute.created",
  "charge.dispute.closed",
  "customer.updated",
  "customer.deleted",
  "checkout.session.completed",
  "setup_intent.succeeded",
  "payment_method.attached",
  "payment_method.detached",
] as const;
/** Stripe's events whose object is a refund (docs/payment-plan.md §9.6). */
export const isRefundEvent = (type: string) => type.startsWith("refund.") || type === "charge.refund.updated";
export type HandledEventType = (typeof handledEventTypes)[number];
export const isHandled = (type: string): type is HandledEventType => (handledEventTypes as readonly string[]).includes(type);

export type WebhookRejection = "missing_signature" | "malformed_signature" | "signature_mismatch" | "stale_timestamp" | "malformed_payload";

/** A delivery refused before anything is recorded: the caller answers 400 and audits the reason. */
export class WebhookRejected extends Error {
  constructor(
    readonly reason: WebhookRejection,
    message: string,
  ) {
    super(message);
    this.name = "WebhookRejected";
  }
}

const eventSchema = z.object({
  id: z.string().regex(/^evt_[A-Za-z0-9]{1,255}$/),
  type: z.string().regex(/^[a-z0-9_.]{1,100}$/),
  created: z.number().int().nonnegative(),
  /** The API version the event was rendered with (the endpoint's); `null` for events of some accounts' defaults. */
  api_version: z.string().max(64).nullable().optional(),
  data: z.object({ object: z.record(z.string(), z.unknown()), previous_attributes: z.record(z.string(), z.unknown()).optional() }),
});

export type StripeEvent = z.infer<typeof eventSchema>;

const crypto = Stripe.createSubtleCryptoProvider();

/**
 * Verifies a webhook delivery with Stripe's own scheme (the stripe library's
 * `constructEventAsync`, SubtleCrypto; `v1` HMAC-SHA256 over `t.rawBody`, any of several `v1`
 * signatures may match) against the current secret and, during a rotation, the previous one.
 * The raw body must be exactly the bytes received.
 */
export async function verifyStripeWebhook(rawBody: string, header: string | null, secrets: string[], now = Date.now()): Promise<StripeEvent> {
  if (!header) throw new WebhookRejected("missing_signature", "The Stripe-Signature header is missing.");
  const t = /(?:^|,)\s*t=(\d{1,12})(?:,|$)/.exec(header);
  if (!t || !/(?:^|,)\s*v1=[0-9a-f]{64}(?:,|$)/.test(header)) throw new WebhookRejected("malformed_signature", "The Stripe-Signature header is malformed (expected t=… and v1=…).");
  let stale = false;
  for (const secret of secrets) {
    try {
      const parsed = (await Stripe.webhooks.constructEventAsync(rawBody, header, secret, WEBHOOK_TOLERANCE_S, crypto, now)) as unknown;
      if (Number(t[1]) > Math.floor(now / 1000) + WEBHOOK_TOLERANCE_S) throw new WebhookRejected("stale_timestamp", "The signed timestamp lies in the future beyond the tolerance.");
      const event = eventSchema.safeParse(parsed);
      if (!event.success) throw new WebhookRejected("malformed_payload", "The body is not a Stripe event (id, type, created, data.object).");
      return event.data;
    } catch (err) {
      if (err instanceof WebhookRejected) throw err;
      if (err instanceof SyntaxError) throw new WebhookRejected("malformed_payload", "The body is not valid JSON.");
      const message = err instanceof Error ? err.message : "";
      if (/tolerance/i.test(message)) stale = true;
      // Otherwise this secret did not sign it: try the next one.
    }
  }
  if (stale) throw new WebhookRejected("stale_timestamp", `The signed timestamp is older than ${WEBHOOK_TOLERANCE_S} s.`);
  throw new WebhookRejected("signature_mismatch", "No signature matches the payload with the configured webhook secret(s).");
}

/** Signs a payload as Stripe does (tests and the local tools): `t=<unix>,v1=<hex HMAC>`. */
export async function signStripePayload(payload: string, secret: string, timestamp = Math.floor(Date.now() / 1000)): Promise<string> {
  return Stripe.webhooks.generateTestHeaderStringAsync({ payload, secret, timestamp, cryptoProvider: crypto });
}
