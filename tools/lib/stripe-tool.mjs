// Shared by stripe:setup and stripe:smoke: the pinned API version and the events the Worker
// handles (read from the Worker's own source, so there is one list), and a `stripe` client for
// STRIPE_API_BASE / STRIPE_SECRET_KEY.
import { readFileSync } from "node:fs";
import Stripe from "stripe";

const src = (path) => readFileSync(new URL(`../../src/${path}`, import.meta.url), "utf8");

/** STRIPE_API_VERSION of src/stripe/client.ts. */
export function pinnedApiVersion() {
  const m = /export const STRIPE_API_VERSION = "([^"]+)"/.exec(src("stripe/client.ts"));
  if (!m) throw new Error("STRIPE_API_VERSION not found in src/stripe/client.ts");
  return m[1];
}

/** handledEventTypes of src/stripe/webhooks.ts: the events the webhook route applies. */
export function handledEvents() {
  const m = /export const handledEventTypes = \[([^\]]*)\] as const/.exec(src("stripe/webhooks.ts"));
  if (!m) throw new Error("handledEventTypes not found in src/stripe/webhooks.ts");
  return [...m[1].matchAll(/"([a-z_.]+)"/g)].map((x) => x[1]);
}

/** A `stripe` client with the pinned version against `base` (api.stripe.com by default). */
export function stripeClient(key, base = "https://api.stripe.com") {
  const url = new URL(base);
  const protocol = url.protocol.replace(":", "");
  return new Stripe(key, {
    apiVersion: pinnedApiVersion(),
    host: url.hostname,
    port: url.port ? Number(url.port) : protocol === "https" ? 443 : 80,
    protocol,
    maxNetworkRetries: 2,
    timeout: 30_000,
  });
}

/** The key and base from the environment, or a usage error. */
export function stripeEnv(env = process.env) {
  const key = env.STRIPE_SECRET_KEY;
  const base = env.STRIPE_API_BASE || "https://api.stripe.com";
  return { key, base };
}
