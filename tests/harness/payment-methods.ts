import { env, SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { offices } from "../../src/db/offices";
import { bearer, mintToken } from "./auth";
import { testDb } from "./seed";
import { syncStripe, until } from "./stripe";
import { deliver, emulatorEvents } from "./webhooks";

const api = "https://billing.test/v1";

/** Asks for the office's hosted setup link as its admin (the route an office admin uses); answers the session's URL and id. */
export async function setupSession(officeId: string) {
  const res = await SELF.fetch(`${api}/offices/${officeId}/payment-method/setup-session`, { method: "POST", headers: bearer(await mintToken("office_admin", [officeId])) });
  if (res.status !== 201) throw new Error(`setup session refused (${res.status}): ${await res.text()}`);
  const body = (await res.json()) as { url: string; expiresAt: string };
  return { ...body, sessionId: new URL(body.url).pathname.split("/").pop()! };
}

/** What the office's admin does on Stripe's hosted page: enters a card (a Stripe test token) and completes the session. */
export async function completeSetupSession(sessionId: string, paymentMethod = "pm_card_visa") {
  const res = await fetch(new URL(`/_emulator/checkout/sessions/${sessionId}/complete`, env.STRIPE_API_BASE!), { method: "POST", body: JSON.stringify({ payment_method: paymentMethod }) });
  if (res.status !== 200) throw new Error(`the emulator did not complete ${sessionId}: ${await res.text()}`);
  return (await res.json()) as { payment_method: { id: string } };
}

/** Delivers the emulator's events whose JSON contains `text` (of the given types) to the Worker, then runs the office's outbox. */
export async function relayEvents(officeId: string, text: string, types: string[]) {
  const events = (await emulatorEvents(text)).filter((e) => types.includes(e.type));
  for (const e of events) {
    const res = await deliver(e);
    if (res.status !== 200) throw new Error(`webhook ${e.type} answered ${res.status}`);
  }
  await syncStripe(officeId);
  return events;
}

export const officeRow = async (officeId: string) => (await testDb().select().from(offices).where(eq(offices.id, officeId)))[0]!;

/**
 * Puts a payment method on file through the real flow: the setup-session route, the customer's
 * completion of Stripe's hosted page (the emulator's), Stripe's `checkout.session.completed`
 * delivered to the webhook route, applied by the office's outbox. `card` is a Stripe test token
 * (`pm_card_chargeCustomerFail` attaches but every charge of it is declined).
 */
export async function addPaymentMethod(officeId: string, card = "pm_card_visa") {
  const { sessionId } = await setupSession(officeId);
  const done = await completeSetupSession(sessionId, card);
  await relayEvents(officeId, sessionId, ["checkout.session.completed"]);
  await until(`a payment method on file for ${officeId}`, async () => (await officeRow(officeId)).paymentMethodStatus === "on_file");
  return { sessionId, paymentMethodId: done.payment_method.id };
}
