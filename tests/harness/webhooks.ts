import { env, SELF } from "cloudflare:test";
import { signStripePayload } from "../../src/stripe/webhooks";
import objects from "../fixtures/stripe/objects.json";

/** Stripe's own example objects (tests/fixtures/stripe), to build events around. */
export const fixtures = objects as unknown as Record<"invoice" | "charge" | "dispute" | "customer" | "event" | "refund", Record<string, unknown>>;

let seq = 0;
/** A fresh event id, unique in this run. */
export const eventId = () => `evt_${Date.now().toString(36)}${(seq++).toString(36)}${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`;

/** A Stripe event around `object`, shaped like Stripe's example event. */
export function stripeEvent(type: string, object: Record<string, unknown>, extra: { created?: number; previousAttributes?: Record<string, unknown>; id?: string } = {}) {
  return {
    ...fixtures.event,
    id: extra.id ?? eventId(),
    type,
    created: extra.created ?? Math.floor(Date.now() / 1000),
    api_version: "2026-02-25.clover",
    data: { object, ...(extra.previousAttributes ? { previous_attributes: extra.previousAttributes } : {}) },
  };
}

/** Stripe's example invoice, as one of ours on Stripe: our references, Stripe's id and a state. */
export function invoiceObject(o: { stripeId: string; officeId: string; invoiceId: string; status: string; amount: number; customer?: string }) {
  return {
    ...fixtures.invoice,
    id: o.stripeId,
    customer: o.customer ?? "cus_fixture000",
    status: o.status,
    amount_due: o.amount,
    amount_paid: o.status === "paid" ? o.amount : 0,
    amount_remaining: o.status === "paid" ? 0 : o.amount,
    metadata: { office_ref: o.officeId, invoice_ref: o.invoiceId },
    status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: o.status === "paid" ? Math.floor(Date.now() / 1000) : null, voided_at: null },
  };
}

/** Posts a body to the webhook route, signed with `secret` (the run's current secret by default). */
export async function deliver(body: unknown, opts: { secret?: string; timestamp?: number; header?: string | null; raw?: string } = {}) {
  const raw = opts.raw ?? JSON.stringify(body, null, 2);
  const header = opts.header !== undefined ? opts.header : await signStripePayload(raw, opts.secret ?? String(env.STRIPE_WEBHOOK_SECRET), opts.timestamp);
  return SELF.fetch("https://billing.test/webhooks/stripe", {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8", ...(header === null ? {} : { "stripe-signature": header }) },
    body: raw,
  });
}

/** Events the local Stripe emulator emitted whose JSON contains `text` (e.g. one of our ids), oldest first. */
export async function emulatorEvents(text: string): Promise<{ id: string; type: string; data: { object: Record<string, unknown> } }[]> {
  const res = await fetch(new URL(`/_emulator/events?contains=${encodeURIComponent(text)}`, env.STRIPE_API_BASE!));
  return ((await res.json()) as { data: { id: string; type: string; data: { object: Record<string, unknown> } }[] }).data;
}
