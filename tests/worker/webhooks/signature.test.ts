import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { webhookEvents } from "../../../src/db/webhook-events";
import { signStripePayload } from "../../../src/stripe/webhooks";
import { expectProblem } from "../../harness/problem";
import { testDb } from "../../harness/seed";
import { refusalEntry } from "../../harness/refusals";
import { deliver, fixtures, stripeEvent } from "../../harness/webhooks";

const customerEvent = () => stripeEvent("customer.updated", { ...fixtures.customer, id: `cus_sig${crypto.randomUUID().slice(0, 8)}`, metadata: {} });

describe("POST /webhooks/stripe: signatures", () => {
  it("accepts a delivery signed with the current secret, and with the previous one while rotating", async () => {
    for (const secret of [String(env.STRIPE_WEBHOOK_SECRET), String(env.STRIPE_WEBHOOK_SECRET_PREVIOUS)]) {
      const event = customerEvent();
      const res = await deliver(event, { secret });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await res.json()).toMatchObject({ received: true, duplicate: false });
      const [row] = await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, event.id));
      expect(row).toMatchObject({ type: "customer.updated" });
    }
  });

  it("accepts a header with several v1 signatures when one of them matches", async () => {
    const event = customerEvent();
    const raw = JSON.stringify(event);
    const good = await signStripePayload(raw, String(env.STRIPE_WEBHOOK_SECRET));
    const t = /t=(\d+)/.exec(good)![1];
    const v1 = /v1=([0-9a-f]+)/.exec(good)![1];
    const header = `t=${t},v1=${"0".repeat(64)},v1=${v1},v0=${"1".repeat(64)}`;
    expect((await deliver(event, { raw, header })).status).toBe(200);
  });

  it("refuses missing, malformed, wrong-secret, tampered and stale signatures with 400 problem+json, audited", async () => {
    const event = customerEvent();
    const raw = JSON.stringify(event);
    const refusedIds: string[] = [];
    const refused = async (res: Response) => {
      await expectProblem(res, 400, "WEBHOOK_SIGNATURE_INVALID");
      refusedIds.push(res.headers.get("x-request-id")!);
    };
    await refused(await deliver(event, { header: null, raw }));
    await refused(await deliver(event, { header: "garbage", raw }));
    await refused(await deliver(event, { secret: "whsec_notoursnotoursnotours", raw }));
    const header = await signStripePayload(raw, String(env.STRIPE_WEBHOOK_SECRET));
    await refused(await deliver(event, { header, raw: raw.replace("customer.updated", "customer.deleted") }));
    const now = Math.floor(Date.now() / 1000);
    await refused(await deliver(event, { raw, timestamp: now - 301 }));
    await refused(await deliver(event, { raw, timestamp: now + 3600 }));
    // Inside the tolerance: accepted (dated from a fresh now, a minute inside: a loaded machine may take seconds per request).
    expect((await deliver(event, { raw, timestamp: Math.floor(Date.now() / 1000) - 240 })).status).toBe(200);
    // Each refusal is on the platform chain, aggregated per source and reason (never the payload).
    const entries = await Promise.all(refusedIds.map((id) => refusalEntry(id, "webhook.rejected")));
    for (const e of entries) expect(e).toMatchObject({ chain: "platform", outcome: "failed", details: { aggregated: true } });
    expect(entries.map((e) => e.details.reason)).toEqual(expect.arrayContaining(["missing_signature", "malformed_signature", "signature_mismatch", "stale_timestamp"]));
    // Nothing was recorded for the refused deliveries of the tampered body.
    expect(await testDb().select().from(webhookEvents).where(eq(webhookEvents.type, "customer.deleted")).then((r) => r.filter((x) => x.id === event.id))).toEqual([]);
  });

  it("refuses a signed body that is not JSON, or not an event (400), an oversized body (413) and other media types (415)", async () => {
    const notJson = "{ this is not json";
    await expectProblem(await deliver(null, { raw: notJson }), 400, "BAD_REQUEST");
    await expectProblem(await deliver({ hello: "world" }), 400, "BAD_REQUEST");
    const big = JSON.stringify({ ...customerEvent(), padding: "x".repeat(1024 * 1024) });
    await expectProblem(await deliver(null, { raw: big }), 413, "PAYLOAD_TOO_LARGE");
    // A large event under 1 MiB is fine (the API's other routes stop at 64 KiB).
    const large = { ...customerEvent(), padding: "x".repeat(200 * 1024) };
    expect((await deliver(large)).status).toBe(200);
    const res = await (await import("cloudflare:test")).SELF.fetch("https://billing.test/webhooks/stripe", { method: "POST", headers: { "content-type": "text/plain" }, body: "hi" });
    await expectProblem(res, 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("acknowledges a repeat delivery once recorded, and records unknown types as ignored", async () => {
    const event = customerEvent();
    expect(await (await deliver(event)).json()).toMatchObject({ duplicate: false });
    expect(await (await deliver(event)).json()).toMatchObject({ received: true, duplicate: true });
    const unknown = stripeEvent("price.created", { id: "price_x1", object: "price" });
    const res = await deliver(unknown);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ignored" });
    const [row] = await testDb().select().from(webhookEvents).where(eq(webhookEvents.id, unknown.id));
    expect(row).toMatchObject({ status: "ignored", error: "unhandled_type" });
  });
});
