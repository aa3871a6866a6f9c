import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { EgressBlockedError, GuardedHttpClient, idleStripeClients, stripeClient, unwrapBlocked, withStripeClient } from "../../../src/stripe/client";
import type { GuardContext } from "../../../src/stripe/guard";

/** Runs a Stripe call and rethrows the guard's refusal as itself. */
const call = <T>(p: Promise<T>) => p.catch((err) => Promise.reject(unwrapBlocked(err)));

const guard: GuardContext = { billingEmail: "billing@lakeside.example", periodDates: [] };

async function emulatorLog(): Promise<{ method: string; path: string; body: string }[]> {
  const res = await fetch(new URL("/_emulator/requests", env.STRIPE_API_BASE!));
  return ((await res.json()) as { data: { method: string; path: string; body: string }[] }).data;
}

function client() {
  const sent: { path: string; body: string }[] = [];
  const http = new GuardedHttpClient(() => guard, (r) => sent.push(r));
  return { http, sent, stripe: stripeClient(env.STRIPE_SECRET_KEY!, env.STRIPE_API_BASE, http) };
}

describe("the guarded Stripe client, against the local Stripe emulator", () => {
  it("sends a clean office-level request, and the emulator receives exactly it", async () => {
    const { http, sent, stripe } = client();
    http.operation = "customer";
    const ref = `off_${crypto.randomUUID().replace(/-/g, "")}`;
    const customer = await stripe.customers.create({ name: "Lakeside Family Practice LLC", email: "billing@lakeside.example", metadata: { office_ref: ref } }, { idempotencyKey: `customer_${ref}` });
    expect(customer.id).toMatch(/^cus_/);
    expect(sent).toHaveLength(1);
    const received = (await emulatorLog()).filter((r) => r.body.includes(ref));
    expect(received).toHaveLength(1);
    expect(received[0]!.body).toBe(sent[0]!.body);
  });

  it("blocks an identifier before anything leaves: the emulator never sees the request", async () => {
    const { http, sent, stripe } = client();
    http.operation = "customer";
    const canary = `CANARY${crypto.randomUUID().slice(0, 8)}`;
    await expect(
      call(stripe.customers.create({ name: `Lakeside ${canary} 555-123-4567`, email: "billing@lakeside.example", metadata: { office_ref: `off_${"0".repeat(32)}` } })),
    ).rejects.toThrow(/phone in name/);
    await expect(call(stripe.customers.create({ name: "Lakeside", email: "jane.roe@gmail.com", metadata: { office_ref: `off_${"0".repeat(32)}` } }))).rejects.toThrow(EgressBlockedError);
    expect(sent).toHaveLength(0);
    const after = await emulatorLog();
    expect(JSON.stringify(after)).not.toContain(canary);
    expect(JSON.stringify(after)).not.toContain("jane.roe");
  });

  it("blocks fields the operation does not send, and any request made outside an operation", async () => {
    const { http, stripe } = client();
    http.operation = "customer";
    await expect(
      call(stripe.customers.create({ name: "Lakeside", email: "billing@lakeside.example", description: "patient list", metadata: { office_ref: `off_${"0".repeat(32)}` } })),
    ).rejects.toThrow(/unknown_field in description/);
    http.operation = null;
    await expect(call(stripe.customers.create({ name: "Lakeside" }))).rejects.toThrow(/unknown_field in operation/);
    // A client bound to no call (as a reused one is between calls) sends nothing.
    const idle = new GuardedHttpClient();
    await expect(call(stripeClient(env.STRIPE_SECRET_KEY!, env.STRIPE_API_BASE, idle).customers.create({ name: "Lakeside" }))).rejects.toThrow(/unknown_field in operation/);
  });

  it("reuses clients one call at a time: concurrent calls each send and observe only their own request, under their own guard", async () => {
    const refs = Array.from({ length: 6 }, () => `off_${crypto.randomUUID().replace(/-/g, "")}`);
    const seen = refs.map(() => [] as string[]);
    const make = (i: number, stripeRef: string, guardFor: GuardContext) =>
      withStripeClient(
        env.STRIPE_SECRET_KEY!,
        env.STRIPE_API_BASE,
        undefined,
        { guard: () => guardFor, onSend: (r) => seen[i]!.push(r.body), beforeSend: async () => {}, operation: "customer" },
        (stripe) => stripe.customers.create({ name: "Lakeside Family Practice LLC", email: guardFor.billingEmail ?? "billing@lakeside.example", metadata: { office_ref: stripeRef } }, { idempotencyKey: `customer_${stripeRef}` }),
      );
    // Twice over, so the second round runs on the first round's clients.
    for (let round = 0; round < 2; round++) {
      const made = await Promise.all(refs.map((ref, i) => make(i, ref, guard)));
      made.forEach((c) => expect(c.id).toMatch(/^cus_/));
    }
    seen.forEach((bodies, i) => {
      expect(bodies).toHaveLength(2);
      for (const body of bodies) expect(body).toContain(refs[i]!);
    });
    // One call's guard refuses its own request; the others, on the same clients, are not affected.
    const results = await Promise.allSettled(refs.map((ref, i) => (i === 2 ? make(i, `${ref} 555-123-4567`, guard) : make(i, ref, guard)).catch((err) => Promise.reject(unwrapBlocked(err)))));
    expect(results[2]!.status).toBe("rejected");
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(EgressBlockedError);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(5);
  });

  it("does not reuse the client of a failed call (one of its requests could still be on its way to the guard)", async () => {
    const call = { guard: () => guard, onSend: () => {}, beforeSend: async () => {}, operation: "customer" as const };
    // Taken from the pool (or made) and returned: the pool holds the same number after a success.
    await withStripeClient(env.STRIPE_SECRET_KEY!, env.STRIPE_API_BASE, 1234, call, async () => ({ id: "x" }));
    const idle = idleStripeClients();
    await expect(withStripeClient(env.STRIPE_SECRET_KEY!, env.STRIPE_API_BASE, 1234, call, async () => Promise.reject(new Error("failed")))).rejects.toThrow("failed");
    expect(idleStripeClients()).toBe(idle - 1);
    await withStripeClient(env.STRIPE_SECRET_KEY!, env.STRIPE_API_BASE, 1234, call, async () => ({ id: "y" }));
    expect(idleStripeClients()).toBe(idle);
  });
});
