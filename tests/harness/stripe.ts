import { env, SELF } from "cloudflare:test";
import { asc, eq } from "drizzle-orm";
import type Stripe from "stripe";
import { invoices } from "../../src/db/invoices";
import { stripeRequests } from "../../src/db/stripe-requests";
import { officeObject } from "../../src/office/client";
import { bearer, mintToken } from "./auth";
import { onboardOffice } from "./billing";
import { addPaymentMethod } from "./payment-methods";
import { testDb } from "./seed";

export type EmulatorEntry = {
  method: string;
  path: string;
  rawQuery: string;
  body: string;
  headers: Record<string, string>;
  idempotencyKey: string | null;
  status: number | string | null;
  replayed: boolean;
  fault: string | null;
};

const emulator = (path: string) => new URL(path, env.STRIPE_API_BASE!);

/** Every request the local Stripe emulator received (all test files share it: filter by your own ids). */
export async function emulatorLog(): Promise<EmulatorEntry[]> {
  const res = await fetch(emulator("/_emulator/requests"));
  return ((await res.json()) as { data: EmulatorEntry[] }).data;
}

/** Fails the emulator's requests whose path, body or idempotency key contain `match` (scoped: parallel-safe). */
export async function faultRule(match: string, kinds: string[] = ["500"], times?: number) {
  const res = await fetch(emulator("/_emulator/fault-rules"), { method: "POST", body: JSON.stringify({ match, kinds, ...(times ? { times } : {}) }) });
  if (res.status !== 200) throw new Error(`fault rule refused: ${await res.text()}`);
}

export async function clearFaultRule(match: string) {
  await fetch(emulator("/_emulator/fault-rules"), { method: "POST", body: JSON.stringify({ clear: match }) });
}

/** A Stripe object as the emulator holds it (read with the test key). */
export async function stripeObject<T = Record<string, unknown>>(path: string): Promise<T> {
  const res = await fetch(emulator(path), { headers: { authorization: `Bearer ${env.STRIPE_SECRET_KEY}` } });
  return (await res.json()) as T;
}

/**
 * The charge of a Stripe invoice's latest payment: this API version names it on neither the
 * invoice nor the invoice payment, so through the payment's intent, as a client finds it.
 */
export async function chargeOfInvoice(stripeInvoiceId: string): Promise<Stripe.Charge> {
  const payments = await stripeObject<Stripe.ApiList<Stripe.InvoicePayment>>(`/v1/invoice_payments?invoice=${stripeInvoiceId}`);
  const paymentIntent = payments.data[0]?.payment.payment_intent;
  if (typeof paymentIntent !== "string") throw new Error(`the Stripe invoice ${stripeInvoiceId} has no payment yet`);
  const charges = await stripeObject<Stripe.ApiList<Stripe.Charge>>(`/v1/charges?payment_intent=${paymentIntent}`);
  return charges.data[0]!;
}

/** Runs the office's Stripe outbox now (after any run already under way) and reports what it did. */
export const syncStripe = (officeId: string) => officeObject(env, officeId).syncStripe();

export async function invoiceRows(officeId: string) {
  return testDb().select().from(invoices).where(eq(invoices.officeId, officeId)).orderBy(asc(invoices.createdAt));
}

export async function stripeLog(officeId: string) {
  return testDb().select().from(stripeRequests).where(eq(stripeRequests.officeId, officeId)).orderBy(asc(stripeRequests.createdAt));
}

/** Ten random lowercase letters: a token no guard detector mistakes for an identifier. */
export const letters = (n = 10) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => String.fromCharCode(97 + (b % 26))).join("");

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns a truthy value and returns it; fails after `timeoutMs` (generous:
 * a condition, not a speed, is what a test waits for; a loaded machine only makes it slower).
 */
export async function until<T>(what: string, check: () => Promise<T | undefined | null | false>, { timeoutMs = 60_000, intervalMs = 25 } = {}): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Waits until the emulator has made its automatic payment attempt on our invoice `invoiceId` (it
 * charges 10–50 ms after finalize, on a timer: later on a busy machine), i.e. until it emitted
 * invoice.paid or invoice.payment_failed for it.
 */
export async function untilStripeAttempted(invoiceId: string) {
  return until(`the emulator's payment attempt on ${invoiceId}`, async () => {
    const res = await fetch(emulator(`/_emulator/events?contains=${encodeURIComponent(invoiceId)}`));
    const events = ((await res.json()) as { data: { type: string }[] }).data;
    return events.some((e) => e.type === "invoice.paid" || e.type === "invoice.payment_failed");
  });
}

/**
 * An office with a payment method on file (put there through the real flow: the setup-session
 * route, Stripe's hosted page, `checkout.session.completed`) and a setup charge (`setupFee`,
 * invoiced at once) on Stripe, finalized there and charged automatically, with the Stripe ids of
 * that invoice and of the customer; `decline` makes the office's card fail (the emulator's
 * `+decline@` convention, so a later change of e-mail "fixes the card"); `attempted` waits for
 * the emulator's payment attempt (it charges shortly after finalize).
 */
export async function pushedOffice(opts: { decline?: boolean; setupFee?: number; graceDays?: number; attempted?: boolean } = {}) {
  const officeId = await onboardOffice({
    startsOn: "2026-11-02",
    plan: { setupFee: 0, ...(opts.graceDays !== undefined ? { graceDays: opts.graceDays } : {}) },
    billingEmail: opts.decline ? "billing+decline@harbor.example" : "billing@harbor.example",
  });
  await addPaymentMethod(officeId);
  const res = await SELF.fetch(`https://billing.test/v1/offices/${officeId}/charges`, {
    method: "POST",
    headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
    body: JSON.stringify({ amount: opts.setupFee ?? 25_000, category: "setup", mode: "invoice_now" }),
  });
  if (res.status !== 201) throw new Error(`setup charge refused (${res.status}): ${await res.text()}`);
  const { invoiceId } = (await res.json()) as { invoiceId: string };
  await syncStripe(officeId);
  const setup = (await invoiceRows(officeId)).find((i) => i.id === invoiceId)!;
  if (setup.stripeState !== "finalized") throw new Error(`the setup invoice of ${officeId} is ${setup.stripeState} on Stripe, not finalized`);
  const log = await stripeLog(officeId);
  const stripeId = log.find((r) => r.idempotencyKey === `invoice_${setup.id}_create`)!.stripeIds![0]!;
  const customerId = log.find((r) => r.operation === "customer")!.stripeIds![0]!;
  if (opts.attempted) await untilStripeAttempted(setup.id);
  return { officeId, setup, stripeId, customerId };
}

/**
 * Makes the emulator's saved results of idempotency keys containing `match` `seconds` older (past
 * 24 hours Stripe prunes them): Stripe's key expiry for our keys only, safe beside parallel tests
 * (advancing the emulator's shared clock would expire every test's keys).
 */
export async function ageStripeKeys(match: string, seconds: number): Promise<number> {
  const res = await fetch(emulator("/_emulator/idempotency/age"), { method: "POST", body: JSON.stringify({ match, seconds }) });
  if (res.status !== 200) throw new Error(`aging keys refused: ${await res.text()}`);
  return ((await res.json()) as { aged: number }).aged;
}
