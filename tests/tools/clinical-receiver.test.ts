// The local receiver of clinical events (tools/clinical-receiver.mjs, started by `npm run dev`): it
// verifies the Worker's own signatures (src/clinical/signature.ts), refuses forged, altered or
// stale ones, accepts the previous secret during a rotation, and drops a repeated event id.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClinicalReceiver, verifySignature } from "../../tools/clinical-receiver.mjs";
import { signatureHeader } from "../../src/clinical/signature";

const current = "current-secret-current-secret-current-secret";
const previous = "previous-secret-previous-secret-previous-secret";
let receiver: Awaited<ReturnType<typeof startClinicalReceiver>>;
const lines: string[] = [];

beforeAll(async () => {
  receiver = await startClinicalReceiver({ port: 0, secrets: [current], log: (l: string) => lines.push(l) });
});
afterAll(() => receiver.close());

const event = (id: string, sequence: number) => ({
  id,
  type: "office.status_changed",
  officeId: `off_${"1".repeat(32)}`,
  sequence,
  occurredAt: "2026-10-01T04:00:00.000Z",
  data: { officeId: `off_${"1".repeat(32)}`, from: "active", to: "past_due" },
});

async function post(body: string, header: string | null) {
  const res = await fetch(`${receiver.url}/events`, { method: "POST", headers: { "content-type": "application/json", ...(header ? { "billing-signature": header } : {}) }, body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("tools/clinical-receiver.mjs", () => {
  it("accepts the Worker's signature (current, or only the previous during a rotation) and prints the event", async () => {
    const body = JSON.stringify(event(`cev_${"a".repeat(32)}`, 1));
    const now = Math.floor(Date.now() / 1000);
    expect(await post(body, await signatureHeader([current, previous], body, now))).toEqual({ status: 200, body: { received: true, duplicate: false } });
    // A receiver still on the previous secret verifies the same header.
    expect(verifySignature(await signatureHeader([current, previous], body, now), body, [previous], now)).toBe(true);
    expect(lines.at(-1)).toContain("#1 office.status_changed");
  });

  it("refuses a missing, forged, altered or stale signature with 400 and records nothing", async () => {
    const body = JSON.stringify(event(`cev_${"b".repeat(32)}`, 2));
    const now = Math.floor(Date.now() / 1000);
    const before = receiver.received.length;
    expect((await post(body, null)).status).toBe(400);
    expect((await post(body, await signatureHeader(["another-secret-another-secret-another"], body, now))).status).toBe(400);
    expect((await post(body.replace("past_due", "active"), await signatureHeader([current], body, now))).status).toBe(400);
    expect((await post(body, await signatureHeader([current], body, now - 301))).status).toBe(400);
    expect((await post(body, `t=${now},v1=zz`)).status).toBe(400);
    expect(receiver.received.length).toBe(before);
  });

  it("answers a repeated event id 200 and marks it a duplicate", async () => {
    const body = JSON.stringify(event(`cev_${"c".repeat(32)}`, 3));
    const now = Math.floor(Date.now() / 1000);
    expect((await post(body, await signatureHeader([current], body, now))).body).toEqual({ received: true, duplicate: false });
    expect((await post(body, await signatureHeader([current], body, now + 1))).body).toEqual({ received: true, duplicate: true });
  });
});
