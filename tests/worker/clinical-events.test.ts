import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF } from "cloudflare:test";
import { asc, eq, sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { eventDataSchemas, eventPayload } from "../../src/clinical/events";
import { backoffSeconds, CLINICAL_QUEUE, deliverClinicalEvent, RETRY_WINDOW_MS, type ClinicalMessage } from "../../src/clinical/delivery";
import { verifySignature } from "../../src/clinical/signature";
import { setClock } from "../../src/clock";
import { loadConfig } from "../../src/config";
import { auditLog } from "../../src/db/audit";
import { clinicalEvents } from "../../src/db/clinical-events";
import { offices } from "../../src/db/offices";
import worker from "../../src/index";
import { createDatabase } from "../../src/db/client";
import { sweepClinicalEvents } from "../../src/jobs/scheduled";
import { bearer, mintToken } from "../harness/auth";
import { monthlyInvoices, onboardOffice, reportEvent, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";
import { pushedOffice, syncStripe } from "../harness/stripe";
import { deliver, invoiceObject, stripeEvent } from "../harness/webhooks";

const api = "https://billing.test/v1";
const receiverBase = () => new URL(env.CLINICAL_WEBHOOK_URL as string).origin;
type Received = { id: string; type: string; officeId: string; sequence: number; occurredAt: string; data: Record<string, unknown>; signature: string; duplicate: boolean };

afterEach(() => setClock());

async function stored(officeId: string) {
  return testDb().select().from(clinicalEvents).where(eq(clinicalEvents.officeId, officeId)).orderBy(asc(clinicalEvents.seq));
}

/** Hands messages to the Worker's queue consumer (the test environment binds no consumer) and reports what it acked and retried. */
async function consume(eventIds: string[], attempts = 1) {
  const batch = createMessageBatch<ClinicalMessage>(
    CLINICAL_QUEUE,
    eventIds.map((eventId, i) => ({ id: `m${i}-${eventId}`, timestamp: new Date(), attempts, body: { eventId } })),
  );
  // The delays asked of the queue, recorded on the way (getQueueResult reports which, not how long).
  const delays: number[] = [];
  const recording = {
    queue: batch.queue,
    messages: batch.messages.map((m) => ({
      get id() { return m.id; },
      get timestamp() { return m.timestamp; },
      get attempts() { return m.attempts; },
      get body() { return m.body; },
      ack: () => m.ack(),
      retry: (opts?: QueueRetryOptions) => {
        delays.push(opts?.delaySeconds ?? 0);
        m.retry(opts);
      },
    })),
    ackAll: () => batch.ackAll(),
    retryAll: (opts?: QueueRetryOptions) => batch.retryAll(opts),
  } as unknown as MessageBatch<never>;
  const ctx = createExecutionContext();
  await worker.queue(recording, env);
  return { ...(await getQueueResult(batch, ctx)), delays };
}

async function received(officeId: string): Promise<Received[]> {
  return (await fetch(`${receiverBase()}/_received?officeId=${officeId}`)).json();
}

async function failNext(officeId: string, status: number, times: number) {
  await fetch(`${receiverBase()}/_fail`, { method: "POST", body: JSON.stringify({ officeId, status, times }) });
}

async function admin(path: string, init: RequestInit = {}, role: "platform_admin" | "office_admin" | "office_viewer" | "clinical_system" = "platform_admin", officeIds: string[] = []) {
  return SELF.fetch(`${api}${path}`, { ...init, headers: { ...bearer(await mintToken(role, officeIds)), ...(init.body ? { "content-type": "application/json" } : {}) } });
}

/** An office whose September closed (patients A and B counted) and an October draft; patients report pt-clin-*. */
async function closedOffice() {
  const officeId = await onboardOffice({ startsOn: "2026-09-01" });
  await reportEvent(officeId, "pt-clin-A", "activate", "2026-09-03T12:00:00Z");
  await reportEvent(officeId, "pt-clin-B", "activate", "2026-09-04T12:00:00Z");
  await runInvoicing([officeId], "2026-10-02T12:00:00Z");
  const september = (await monthlyInvoices(officeId)).find((i) => i.periodStart === "2026-09-01")!;
  return { officeId, september };
}

describe("clinical events: emitted with the change (docs/clinical-events.md)", () => {
  it("a cycle close records cycle.closed and invoice.finalized in the office's sequence, ids and counts only", async () => {
    const { officeId, september } = await closedOffice();
    const rows = await stored(officeId);
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    const close = rows.filter((r) => JSON.parse(r.data).invoiceId === september.id);
    expect(close.map((r) => r.type)).toEqual(["cycle.closed", "invoice.finalized"]);
    expect(JSON.parse(close[0]!.data)).toEqual({ officeId, invoiceId: september.id, invoiceKind: "monthly", status: september.status, periodStart: "2026-09-01", periodEnd: "2026-10-01", billablePatients: 2 });
    expect(close.every((r) => r.status === "pending")).toBe(true);
    // The office object handed them to the queue after its operation.
    expect(close.every((r) => r.queuedAt !== null)).toBe(true);
    expect(JSON.stringify(rows)).not.toMatch(/pt-clin|[0-9a-f]{64}/);
  });

  it("a failed payment, past_due, suspended, paid and active again: each change is one event, in order", async () => {
    const { officeId, setup, stripeId } = await pushedOffice({ decline: true, graceDays: 3 });
    await deliver(stripeEvent("invoice.payment_failed", invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "open", amount: 25_000 })));
    await syncStripe(officeId);
    await testDb().update(offices).set({ pastDueSince: Date.now() - 4 * 86_400_000 }).where(eq(offices.id, officeId));
    await syncStripe(officeId);
    await deliver(stripeEvent("invoice.paid", invoiceObject({ stripeId, officeId, invoiceId: setup.id, status: "paid", amount: 25_000 })));
    await syncStripe(officeId);
    const rows = await stored(officeId);
    const summary = rows.map((r) => {
      const d = JSON.parse(r.data);
      return r.type === "office.status_changed" ? `${d.from}->${d.to}` : `${r.type}${d.invoiceId === setup.id ? "(setup)" : ""}`;
    });
    expect(summary).toEqual(["invoice.finalized(setup)", "invoice.payment_failed(setup)", "active->past_due", "past_due->suspended", "invoice.paid(setup)", "suspended->active"]);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    // Each was handed to the queue by the office object right after the write that recorded it.
    expect(rows.every((r) => r.queuedAt !== null)).toBe(true);
  });

  it("a void records invoice.voided", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01" });
    const charge = await admin(`/offices/${officeId}/charges`, { method: "POST", body: JSON.stringify({ amount: 12_000, category: "training", mode: "invoice_now" }) });
    expect(charge.status, await charge.clone().text()).toBe(201);
    const { invoiceId } = (await charge.json()) as { invoiceId: string };
    const voided = await admin(`/offices/${officeId}/invoices/${invoiceId}/void`, { method: "POST" });
    expect(voided.status, await voided.clone().text()).toBe(200);
    const types = (await stored(officeId)).filter((r) => JSON.parse(r.data).invoiceId === invoiceId).map((r) => r.type);
    expect(types).toEqual(["invoice.finalized", "invoice.voided"]);
  });
});

describe("clinical events: delivery", () => {
  it("delivers signed events in sequence order; the signature verifies with either secret (rotation), not with another", async () => {
    const { officeId } = await closedOffice();
    const rows = await stored(officeId);
    const result = await consume(rows.map((r) => r.id));
    expect(result.explicitAcks.length).toBe(rows.length);
    expect(result.retryMessages).toEqual([]);
    const got = await received(officeId);
    expect(got.map((e) => [e.id, e.sequence, e.type])).toEqual(rows.map((r) => [r.id, r.seq, r.type]));
    const config = loadConfig(env);
    for (const e of got) {
      const { signature, duplicate: _d, ...event } = e;
      const body = JSON.stringify(event);
      const t = Number(/t=(\d+)/.exec(signature)![1]);
      expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
      expect(await verifySignature(signature, body, [config.CLINICAL_WEBHOOK_SECRET!], t)).toBe(true);
      expect(await verifySignature(signature, body, [config.CLINICAL_WEBHOOK_SECRET_PREVIOUS!], t)).toBe(true);
      expect(await verifySignature(signature, body, ["another-secret-another-secret-another"], t)).toBe(false);
      expect(await verifySignature(signature, body.replace("2026", "2027"), [config.CLINICAL_WEBHOOK_SECRET!], t)).toBe(false);
      expect(await verifySignature(signature, body, [config.CLINICAL_WEBHOOK_SECRET!], t + 301)).toBe(false);
      expect(Object.keys(event).sort()).toEqual(["data", "id", "occurredAt", "officeId", "sequence", "type"]);
    }
    expect(JSON.stringify(got)).not.toContain("pt-clin");
    const after = await stored(officeId);
    expect(after.every((r) => r.status === "delivered" && r.attempts === 1 && r.lastStatus === 200 && r.deliveredAt !== null)).toBe(true);
    // A duplicate message (the queue delivers at least once) sends nothing again.
    const again = await consume([rows[0]!.id]);
    expect(again.explicitAcks.length).toBe(1);
    expect(await received(officeId)).toHaveLength(rows.length);
  });

  it("retries a receiver's 500 with backoff, then delivers; the attempts are recorded", async () => {
    const { officeId } = await closedOffice();
    const [first] = await stored(officeId);
    await failNext(officeId, 500, 2);
    const r1 = await consume([first!.id]);
    expect(r1.retryMessages).toHaveLength(1);
    expect(r1.delays).toEqual([30]);
    let row = (await stored(officeId))[0]!;
    expect(row).toMatchObject({ status: "pending", attempts: 1, lastStatus: 500, lastError: "http_500" });
    expect(row.nextAttemptAt! - row.lastAttemptAt!).toBe(30_000);
    const r2 = await consume([first!.id], 2);
    expect(r2.delays).toEqual([60]);
    const r3 = await consume([first!.id], 3);
    expect(r3.explicitAcks.length).toBe(1);
    row = (await stored(officeId))[0]!;
    expect(row).toMatchObject({ status: "delivered", attempts: 3, lastStatus: 200, lastError: null, nextAttemptAt: null });
    expect((await received(officeId)).map((e) => e.id)).toEqual([first!.id]);
    expect([1, 2, 3, 11, 12, 50].map(backoffSeconds)).toEqual([30, 60, 120, 30_720, 43_200, 43_200]);
  });

  it("stops three days after the first attempt: failed, then an admin replays it with the same id", async () => {
    const { officeId } = await closedOffice();
    const [first] = await stored(officeId);
    const start = Date.now();
    setClock(start);
    await failNext(officeId, 503, 100);
    expect((await consume([first!.id])).retryMessages).toHaveLength(1);
    // Near the end of the window, the last retry is not delayed past it.
    setClock(start + RETRY_WINDOW_MS - 10_000);
    expect((await consume([first!.id], 2)).delays).toEqual([10]);
    setClock(start + RETRY_WINDOW_MS);
    const last = await consume([first!.id], 3);
    expect(last.explicitAcks.length).toBe(1);
    // (The receiver's clock is real: it refuses a signature timestamped three days ahead with a 400, a failure like the 503.)
    expect((await stored(officeId))[0]).toMatchObject({ status: "failed", attempts: 3, lastError: expect.stringMatching(/^http_(503|400)$/) });
    setClock();
    await failNext(officeId, 503, 0);

    const list = await admin(`/admin/clinical-events?officeId=${officeId}&status=failed`);
    expect(list.status).toBe(200);
    const page = (await list.json()) as { delivery: string; data: { id: string; status: string; sequence: number }[] };
    expect(page.delivery).toBe("configured");
    expect(page.data.map((d) => [d.id, d.status, d.sequence])).toEqual([[first!.id, "failed", 1]]);
    const replay = await admin(`/admin/clinical-events/${first!.id}/replay`, { method: "POST" });
    expect(replay.status, await replay.clone().text()).toBe(202);
    expect(await replay.json()).toMatchObject({ id: first!.id, status: "pending", attempts: 0 });
    await consume([first!.id]);
    expect((await stored(officeId))[0]).toMatchObject({ status: "delivered", attempts: 1 });
    // Replayed again after delivery: the receiver gets the same id and de-duplicates it.
    await admin(`/admin/clinical-events/${first!.id}/replay`, { method: "POST" });
    await consume([first!.id]);
    expect((await received(officeId)).map((e) => [e.id, e.duplicate])).toEqual([[first!.id, false], [first!.id, true]]);
    const audit = await testDb().select().from(auditLog).where(sql`${auditLog.officeId} = ${officeId} AND ${auditLog.action} = 'clinical_event.replay'`);
    expect(audit.map((a) => a.outcome)).toEqual(["succeeded", "succeeded"]);
  });

  it("never sends data off the allowlist: such an event fails without a request", async () => {
    const { officeId, september } = await closedOffice();
    const data = { officeId, invoiceId: september.id, invoiceKind: "monthly", status: "open", periodStart: "2026-09-01", periodEnd: "2026-10-01", patientKey: "f".repeat(64) };
    const bad = `cev_${crypto.randomUUID().replace(/-/g, "")}`;
    await testDb().insert(clinicalEvents).values({ id: bad, officeId, seq: 1000, type: "invoice.paid", data: JSON.stringify(data), occurredAt: Date.now() });
    const result = await consume([bad]);
    expect(result.explicitAcks.length).toBe(1);
    expect((await testDb().select().from(clinicalEvents).where(eq(clinicalEvents.id, bad)))[0]).toMatchObject({ status: "failed", lastError: "payload_not_allowed" });
    expect((await received(officeId)).map((e) => e.id)).not.toContain(bad);
    // The allowlist itself: ids, statuses, periods and counts; nothing named like a patient, a name or an amount.
    const fields = Object.fromEntries(Object.entries(eventDataSchemas).map(([type, schema]) => [type, Object.keys(schema.shape).sort()]));
    const invoiceFields = ["invoiceId", "invoiceKind", "officeId", "periodEnd", "periodStart", "status"];
    expect(fields).toEqual({
      "office.status_changed": ["from", "officeId", "to"],
      "invoice.finalized": invoiceFields,
      "invoice.paid": invoiceFields,
      "invoice.payment_failed": invoiceFields,
      "invoice.voided": invoiceFields,
      "cycle.closed": [...invoiceFields, "billablePatients"].sort(),
    });
    expect(eventPayload({ id: bad, type: "office.status_changed", officeId, seq: 1, occurredAt: 0, data: JSON.stringify({ officeId, from: "active", to: "past_due", name: "x" }) })).toBeNull();
    expect(eventPayload({ id: bad, type: "office.status_changed", officeId, seq: 1, occurredAt: 0, data: JSON.stringify({ officeId: "off_" + "0".repeat(32), from: "active", to: "past_due" }) })).toBeNull();
  });

  it("the hourly sweep hands an event the office object did not (its send failed)", async () => {
    const { officeId } = await closedOffice();
    const [first] = await stored(officeId);
    await testDb().update(clinicalEvents).set({ queuedAt: null }).where(eq(clinicalEvents.id, first!.id));
    expect(await sweepClinicalEvents(createDatabase(loadConfig(env)), env)).toBeGreaterThanOrEqual(1);
    expect((await stored(officeId))[0]!.queuedAt).not.toBeNull();
  });

  it("without CLINICAL_WEBHOOK_URL an event stays stored and pending, and says so", async () => {
    const { officeId } = await closedOffice();
    const [first] = await stored(officeId);
    const config = { ...loadConfig(env), CLINICAL_WEBHOOK_URL: undefined };
    expect(await deliverClinicalEvent(testDb(), config, first!.id)).toMatchObject({ result: "skipped", error: "not_configured" });
    expect((await stored(officeId))[0]).toMatchObject({ status: "pending", lastError: "not_configured", attempts: 0, lastAttemptAt: null });
  });
});

describe("clinical events: configuration", () => {
  it("validates the URL and secrets with the rest of the environment, naming the variable, never its value", () => {
    const base = env;
    expect(loadConfig({ ...base, CLINICAL_WEBHOOK_URL: undefined, CLINICAL_WEBHOOK_SECRET: undefined, CLINICAL_WEBHOOK_SECRET_PREVIOUS: undefined }).CLINICAL_WEBHOOK_URL).toBeUndefined();
    expect(() => loadConfig({ ...base, CLINICAL_WEBHOOK_SECRET: undefined, CLINICAL_WEBHOOK_SECRET_PREVIOUS: undefined })).toThrow(/CLINICAL_WEBHOOK_SECRET/);
    expect(() => loadConfig({ ...base, CLINICAL_WEBHOOK_SECRET: "short-secret" })).toThrow(/CLINICAL_WEBHOOK_SECRET/);
    expect(() => loadConfig({ ...base, CLINICAL_WEBHOOK_SECRET_PREVIOUS: env.CLINICAL_WEBHOOK_SECRET })).toThrow(/CLINICAL_WEBHOOK_SECRET_PREVIOUS/);
    expect(() => loadConfig({ ...base, CLINICAL_WEBHOOK_URL: "not a url" })).toThrow(/CLINICAL_WEBHOOK_URL/);
    try {
      loadConfig({ ...base, CLINICAL_WEBHOOK_SECRET: "short-secret" });
    } catch (err) {
      expect(String((err as Error).message)).not.toContain("short-secret");
    }
  });
});

describe("clinical events: the admin routes", () => {
  it("are platform_admin's; bad filters, ids and cursors are 400; an unknown event is 404", async () => {
    const { officeId } = await closedOffice();
    const [first] = await stored(officeId);
    for (const role of ["office_admin", "office_viewer", "clinical_system"] as const) {
      await expectProblem(await admin(`/admin/clinical-events?officeId=${officeId}`, {}, role, [officeId]), 403, "FORBIDDEN");
      await expectProblem(await admin(`/admin/clinical-events/${first!.id}/replay`, { method: "POST" }, role, [officeId]), 403, "FORBIDDEN");
    }
    await expectProblem(await SELF.fetch(`${api}/admin/clinical-events`), 401, "UNAUTHORIZED");
    await expectProblem(await admin(`/admin/clinical-events?status=lost`), 400, "VALIDATION_FAILED");
    await expectProblem(await admin(`/admin/clinical-events?type=patient.activated`), 400, "VALIDATION_FAILED");
    await expectProblem(await admin(`/admin/clinical-events?cursor=bm90LWEtY3Vyc29y`), 400, "VALIDATION_FAILED");
    await expectProblem(await admin(`/admin/clinical-events/evt_123/replay`, { method: "POST" }), 400, "VALIDATION_FAILED");
    await expectProblem(await admin(`/admin/clinical-events/cev_${"0".repeat(32)}/replay`, { method: "POST" }), 404, "NOT_FOUND");
  });

  it("pages newest first with a cursor, filtered by office and type", async () => {
    const { officeId } = await closedOffice();
    const all = await stored(officeId);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await admin(`/admin/clinical-events?officeId=${officeId}&limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      const page = (await res.json()) as { data: { id: string; officeId: string }[]; nextCursor: string | null };
      seen.push(...page.data.map((d) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual(all.map((r) => r.id).sort());
    const closes = (await (await admin(`/admin/clinical-events?officeId=${officeId}&type=cycle.closed`)).json()) as { data: { type: string }[] };
    expect(closes.data.length).toBeGreaterThan(0);
    expect(closes.data.every((d) => d.type === "cycle.closed")).toBe(true);
  });
});
