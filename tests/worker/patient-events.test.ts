import { env, runInDurableObject, SELF } from "cloudflare:test";
import { and, eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { invoicePatients, invoices } from "../../src/db/invoices";
import { offices } from "../../src/db/offices";
import { patientEvents, patients } from "../../src/db/patients";
import type { OfficeBilling } from "../../src/office/office-billing";
import { newId } from "../../src/security/request-id";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { seedOffice, testDb } from "../harness/seed";
import { countDbRoundTrips } from "../harness/round-trips";

const base = "https://billing.test/v1/offices";

type Event = { patientId: string; kind: "activate" | "deactivate"; occurredAt: string; idempotencyKey: string };
type Result = {
  index: number;
  status: "applied" | "replayed" | "conflict" | "invalid";
  event?: { eventId: string; patientKey: string; kind: string; applied: boolean; active: boolean; occurredAt: string };
  code?: string;
  reason?: string;
  field?: string;
};
type Answer = { results: Result[]; counts: Record<Result["status"], number> };

async function send(officeId: string, body: unknown, opts: { token?: string; headers?: Record<string, string>; raw?: BodyInit } = {}) {
  const token = opts.token ?? (await mintToken("clinical_system", [officeId]));
  return SELF.fetch(`${base}/${officeId}/patient-events`, {
    method: "POST",
    headers: { ...bearer(token), "content-type": "application/json", ...opts.headers },
    body: opts.raw ?? JSON.stringify(body),
  });
}

async function report(officeId: string, events: Event[], token?: string): Promise<Answer> {
  const res = await send(officeId, { events }, { token });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Answer;
}

const ev = (patientId: string, kind: Event["kind"], occurredAt: string, idempotencyKey = crypto.randomUUID()): Event => ({ patientId, kind, occurredAt, idempotencyKey });

// Round trips of this file's isolate (the test and the office objects it runs), counted at its
// fetch to the database (tests/harness/round-trips.ts).
let counter: ReturnType<typeof countDbRoundTrips>;
beforeAll(() => {
  counter = countDbRoundTrips();
});
afterAll(() => {
  counter.restore();
});
async function pipelines(): Promise<number> {
  return counter.trips;
}

/** An office with an open draft for November 2026 (with its patients line), so counting shows. */
async function officeWithDraft() {
  const db = testDb();
  const office = await seedOffice(db, { billingStart: "2026-11-01" });
  const draftId = newId("inv");
  await db.insert(invoices).values({
    id: draftId,
    officeId: office.id!,
    kind: "monthly",
    status: "draft",
    currency: "usd",
    periodStart: "2026-11-01",
    periodEnd: "2026-12-01",
    periodStartAt: Date.parse("2026-11-01T04:00:00Z"),
    periodEndAt: Date.parse("2026-12-01T05:00:00Z"),
    planVersionId: office.planVersionId,
    updatedAt: Date.now(),
  });
  return { db, office, draftId };
}

describe("POST /v1/offices/{officeId}/patient-events", () => {
  it("records a batch in order, answers per event without the patient ids, audits it once, keeps the chain verifiable", async () => {
    const { db, office, draftId } = await officeWithDraft();
    const raw = Array.from({ length: 4 }, (_, i) => `MRN-BULK-${crypto.randomUUID().slice(0, 8)}-${i}`);
    const token = await mintToken("clinical_system", [office.id!], { sub: "clinical-bulk" });
    const res = await send(office.id!, { events: raw.map((id, i) => ev(id, "activate", `2026-11-0${i + 2}T10:00:00Z`)) }, { token });
    const text = await res.clone().text();
    expect(res.status, text).toBe(200);
    for (const id of raw) expect(text).not.toContain(id);
    const answer = (await res.json()) as Answer;
    expect(answer.counts).toEqual({ applied: 4, replayed: 0, conflict: 0, invalid: 0 });
    expect(answer.results.map((r) => [r.index, r.status, r.event?.active, r.event?.applied])).toEqual([0, 1, 2, 3].map((i) => [i, "applied", true, true]));
    const keys = answer.results.map((r) => r.event!.patientKey);
    expect(new Set(keys).size).toBe(4);

    const state = await db.select().from(patients).where(eq(patients.officeId, office.id!));
    expect(state.map((p) => p.patientKey).sort()).toEqual([...keys].sort());
    const counted = await db.select().from(invoicePatients).where(eq(invoicePatients.invoiceId, draftId));
    expect(counted).toHaveLength(4);
    const [draft] = await db.select().from(invoices).where(eq(invoices.id, draftId));
    expect(draft!.billablePatients).toBe(4);

    const requestId = res.headers.get("x-request-id")!;
    const entries = await db.select().from(auditLog).where(eq(auditLog.requestId, requestId));
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ chain: office.id, action: "patient.events", outcome: "succeeded", actorSub: "clinical-bulk" });
    expect(entries[0]!.targetIds.sort()).toEqual(answer.results.map((r) => r.event!.eventId).sort());
    expect(entries[0]!.details).toMatchObject({ events: 4, applied: 4, replayed: 0, conflict: 0, invalid: 0, patientKeysSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    for (const id of raw) expect(JSON.stringify(entries)).not.toContain(id);

    const verify = await SELF.fetch(`https://billing.test/v1/audit/verify?officeId=${office.id}`, { headers: bearer(await mintToken("platform_admin")) });
    expect(await verify.json()).toMatchObject({ ok: true });
  });

  it("answers the worked example of payment-plan §5.10: applied, applied, invalid, replayed, conflict", async () => {
    const { db, office } = await officeWithDraft();
    const first = ev("pt-P", "activate", "2026-11-03T09:00:00Z", "ex-0");
    const answer = await report(office.id!, [
      first,
      ev("pt-P", "deactivate", "2026-11-03T10:00:00Z", "ex-1"),
      ev("pt-Q", "activate", "2023-01-01T00:00:00Z", "ex-2"), // the window opens 2025-10-31T00:00:00Z
      { ...first },
      { ...first, occurredAt: "2026-11-04T09:00:00Z" },
    ]);
    expect(answer.results.map((r) => r.status)).toEqual(["applied", "applied", "invalid", "replayed", "conflict"]);
    expect(answer.results[0]!.event).toMatchObject({ kind: "activate", applied: true, active: true });
    expect(answer.results[1]!.event).toMatchObject({ kind: "deactivate", applied: true, active: false });
    expect(answer.results[2]).toMatchObject({ code: "OCCURRED_AT_OUT_OF_RANGE", field: "occurredAt", reason: expect.stringContaining("2025-10-31T00:00:00.000Z") });
    expect(answer.results[3]!.event).toEqual(answer.results[0]!.event);
    expect(answer.results[4]).toMatchObject({ code: "IDEMPOTENCY_KEY_REUSED" });
    expect(answer.counts).toEqual({ applied: 2, replayed: 1, conflict: 1, invalid: 1 });
    const [p] = await db.select().from(patients).where(eq(patients.officeId, office.id!));
    expect(p).toMatchObject({ active: false, changedAt: Date.parse("2026-11-03T10:00:00Z") });
    expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id!))).toHaveLength(2);
  });

  it("takes events of one patient in the request's order, whatever their dates (late, tied, out of order)", async () => {
    const { db, office, draftId } = await officeWithDraft();
    const answer = await report(office.id!, [
      ev("pt-L", "activate", "2026-11-10T09:00:00Z"),
      ev("pt-L", "deactivate", "2026-11-05T09:00:00Z"), // older: recorded, not applied
      ev("pt-L", "deactivate", "2026-11-10T09:00:00Z"), // tied: a deactivation outweighs
      ev("pt-L", "activate", "2026-11-10T09:00:00Z"), // tied and outweighed
      ev("pt-M", "deactivate", "2026-11-02T09:00:00Z"),
    ]);
    expect(answer.results.map((r) => [r.event!.applied, r.event!.active])).toEqual([
      [true, true],
      [false, true],
      [true, false],
      [false, false],
      [true, false],
    ]);
    const state = await db.select().from(patients).where(eq(patients.officeId, office.id!));
    expect(state.find((s) => s.patientKey === answer.results[0]!.event!.patientKey)).toMatchObject({ active: false, changedAt: Date.parse("2026-11-10T09:00:00Z") });
    // L was activated inside the cycle: counted; M never active: not.
    const counted = await db.select().from(invoicePatients).where(eq(invoicePatients.invoiceId, draftId));
    expect(counted.map((c) => c.patientKey)).toEqual([answer.results[0]!.event!.patientKey]);
  });

  it("sees the state left by earlier requests: a late deactivation drops a patient carried in; single and bulk share keys", async () => {
    const { db, office, draftId } = await officeWithDraft();
    const [a] = (await report(office.id!, [ev("pt-C", "activate", "2026-10-20T09:00:00Z", "carry-1")])).results;
    expect(a!.event).toMatchObject({ applied: true, active: true });
    expect(await db.select().from(invoicePatients).where(eq(invoicePatients.invoiceId, draftId))).toHaveLength(1);
    const [d] = (await report(office.id!, [ev("pt-C", "deactivate", "2026-10-25T09:00:00Z")])).results;
    expect(d!.event).toMatchObject({ applied: true, active: false });
    expect(await db.select().from(invoicePatients).where(eq(invoicePatients.invoiceId, draftId))).toHaveLength(0);

    // The same key through the (deprecated) path route replays the bulk route's answer, and back.
    const single = await SELF.fetch(`${base}/${office.id}/patients/pt-C/activate`, {
      method: "POST",
      headers: { ...bearer(await mintToken("clinical_system", [office.id!])), "content-type": "application/json", "idempotency-key": "carry-1" },
      body: JSON.stringify({ occurredAt: "2026-10-20T09:00:00Z" }),
    });
    expect(single.status).toBe(200);
    expect(single.headers.get("idempotent-replayed")).toBe("true");
    // Still served, but marked: the successor is the body form.
    expect(single.headers.get("deprecation")).toBe("true");
    expect(single.headers.get("link")).toBe(`</v1/offices/${office.id}/patient-events>; rel="successor-version"`);
    expect(await single.json()).toEqual(a!.event);
    expect((await report(office.id!, [ev("pt-C", "activate", "2026-10-20T09:00:00Z", "carry-1")])).results[0]).toEqual({ index: 0, status: "replayed", event: a!.event });
  });

  it("takes 1,000 events (over 64 KiB) in one database round trip; a retry replays them all from the database (the unique key refuses it, the first answers are read), recording nothing twice", async () => {
    const { db, office, draftId } = await officeWithDraft();
    const batch = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ev(`pt-${tag}-${String(i).padStart(4, "0")}-${"x".repeat(60)}`, "activate", "2026-11-05T12:00:00Z", `${tag}-${i}-${"k".repeat(40)}`));
    // A first request warms the object (its office and key version).
    await report(office.id!, batch(1, "warm"));
    // Round trips are counted on the whole server, which other test files may use at the same
    // time: the fewest over a few requests is this route's own.
    let fewest = Infinity;
    let events: Event[] = [];
    let answer: Answer | undefined;
    for (let attempt = 0; attempt < 3 && fewest > 1; attempt++) {
      events = batch(1000, `big${attempt}`);
      expect(JSON.stringify({ events }).length).toBeGreaterThan(64 * 1024);
      const before = await pipelines();
      answer = await report(office.id!, events);
      fewest = Math.min(fewest, (await pipelines()) - before);
      expect(answer.counts).toEqual({ applied: 1000, replayed: 0, conflict: 0, invalid: 0 });
      expect(answer.results.map((r) => r.index)).toEqual(events.map((_, i) => i));
    }
    expect(fewest).toBe(1);
    const rows = await db.select({ id: patientEvents.id }).from(patientEvents).where(eq(patientEvents.officeId, office.id!));
    expect(rows.length % 1000).toBe(1);
    const [draft] = await db.select().from(invoices).where(eq(invoices.id, draftId));
    expect(draft!.billablePatients).toBe(rows.length);
    // A large request's answers are not kept in the object's store (§5.11); the small one's is.
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(office.id!));
    expect(await runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM idempotency").one().n)).toBe(1);

    let replayTrips = Infinity;
    let replay: Answer | undefined;
    for (let attempt = 0; attempt < 3 && replayTrips > 2; attempt++) {
      const again = await pipelines();
      replay = await report(office.id!, events);
      replayTrips = Math.min(replayTrips, (await pipelines()) - again);
      expect(replay.counts).toEqual({ applied: 0, replayed: 1000, conflict: 0, invalid: 0 });
    }
    // The refused batch, then the read of the first answers; nothing written.
    expect(replayTrips).toBe(2);
    expect(replay!.results.map((r) => r.event)).toEqual(answer!.results.map((r) => r.event));
    expect(await db.select({ id: patientEvents.id }).from(patientEvents).where(eq(patientEvents.officeId, office.id!))).toHaveLength(rows.length);
    // The refused batch left nothing for the audit chain to settle: the next write is one round trip.
    let nextTrips = Infinity;
    for (let attempt = 0; attempt < 3 && nextTrips > 1; attempt++) {
      const before = await pipelines();
      const fresh = await report(office.id!, batch(1, `after${attempt}`));
      nextTrips = Math.min(nextTrips, (await pipelines()) - before);
      expect(fresh.counts.applied).toBe(1);
      expect((await report(office.id!, events)).counts.replayed).toBe(1000); // refused again (a large request's keys are not kept) before the next try
    }
    expect(nextTrips).toBe(1);
    // A single report repeating one of them is answered from the database too, and kept in the store.
    const one = answer!.results[7]!.event;
    const single = await report(office.id!, [events[7]!]);
    expect(single.results[0]).toMatchObject({ status: "replayed", event: one });
    const before = await pipelines();
    expect((await report(office.id!, [events[7]!])).results[0]).toMatchObject({ status: "replayed", event: one });
    expect((await pipelines()) - before).toBe(0);
    const verify = await SELF.fetch(`https://billing.test/v1/audit/verify?officeId=${office.id}`, { headers: bearer(await mintToken("platform_admin")) });
    expect(await verify.json()).toMatchObject({ ok: true });
  }, 60_000);

  it("replays from the database when the office object lost its store, and sees a cancellation made behind its back", async () => {
    const { db, office } = await officeWithDraft();
    const events = [ev("pt-S1", "activate", "2026-11-02T10:00:00Z", "lost-a"), ev("pt-S2", "activate", "2026-11-02T11:00:00Z", "lost-b")];
    const first = await report(office.id!, events);
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(office.id!));
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec("DELETE FROM idempotency");
    });
    await db.update(offices).set({ status: "canceled" }).where(eq(offices.id, office.id!));
    const again = await report(office.id!, [...events, { ...events[0]!, occurredAt: "2026-11-09T10:00:00Z" }, ev("pt-S3", "activate", "2026-11-03T10:00:00Z"), ev("pt-S1", "deactivate", "2026-11-04T10:00:00Z")]);
    expect(again.results.map((r) => r.status)).toEqual(["replayed", "replayed", "conflict", "conflict", "applied"]);
    expect(again.results[0]!.event).toEqual(first.results[0]!.event);
    expect(again.results[3]).toMatchObject({ code: "OFFICE_CANCELED" });
    expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id!))).toHaveLength(3);
  });

  it("replays from the database when the office object lost its store and the office is as it was: the events' unique key refuses the batch, nothing is written twice", async () => {
    const { db, office, draftId } = await officeWithDraft();
    const events = [ev("pt-K1", "activate", "2026-11-02T10:00:00Z", "kept-a"), ev("pt-K2", "activate", "2026-11-02T11:00:00Z", "kept-b")];
    const first = await report(office.id!, events);
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(office.id!));
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec("DELETE FROM idempotency");
    });
    const again = await report(office.id!, [...events, { ...events[1]!, occurredAt: "2026-11-05T10:00:00Z" }, ev("pt-K3", "activate", "2026-11-03T10:00:00Z")]);
    expect(again.results.map((r) => r.status)).toEqual(["replayed", "replayed", "conflict", "applied"]);
    expect(again.results.slice(0, 2).map((r) => r.event)).toEqual(first.results.map((r) => r.event));
    expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id!))).toHaveLength(3);
    expect(await db.select().from(invoicePatients).where(eq(invoicePatients.invoiceId, draftId))).toHaveLength(3);
    const [draft] = await db.select().from(invoices).where(eq(invoices.id, draftId));
    expect(draft!.billablePatients).toBe(3);
    // The refused batch's audit entry was never written; the chain goes on from its head.
    const entries = await db.select().from(auditLog).where(eq(auditLog.chain, office.id!));
    expect(entries.filter((e) => e.action === "patient.events").map((e) => e.details)).toEqual([
      expect.objectContaining({ events: 2, applied: 2, replayed: 0 }),
      expect.objectContaining({ events: 4, applied: 1, replayed: 2, conflict: 1 }),
    ]);
    const verify = await SELF.fetch(`https://billing.test/v1/audit/verify?officeId=${office.id}`, { headers: bearer(await mintToken("platform_admin")) });
    expect(await verify.json()).toMatchObject({ ok: true });
  });

  it("replays a key repeated right after its batch, before the object's store has kept its answer (the unique key refuses the batch)", async () => {
    const { db, office } = await officeWithDraft();
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(office.id!));
    const actor = { actorSub: "test", actorRole: "clinical_system", requestId: "req_test" };
    const event = { kind: "activate" as const, rootPatientKey: "ab".repeat(32), occurredAt: Date.parse("2026-11-02T10:00:00Z"), idempotencyKeyHash: "cd".repeat(32) };
    const [first, again, kept] = await runInDurableObject(stub, async (instance: OfficeBilling, state) => {
      const first = await instance.patientEvents(office.id!, [event], actor);
      // Still this turn of the event loop: the answer is not in the store yet.
      const keptBefore = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM idempotency").one().n;
      const again = await instance.patientEvents(office.id!, [event], actor);
      return [first, again, keptBefore];
    });
    expect(kept).toBe(0);
    expect(first).toMatchObject({ ok: true, value: [{ status: "applied" }] });
    expect(again).toMatchObject({ ok: true, value: [{ status: "replayed" }] });
    expect((again as { value: { event: unknown }[] }).value[0]!.event).toEqual((first as { value: { event: unknown }[] }).value[0]!.event);
    expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id!))).toHaveLength(1);
  });

  it("keeps a first answer compact in the office object's store, and still replays answers stored whole before", async () => {
    const { db, office } = await officeWithDraft();
    const events = [ev("pt-C1", "activate", "2026-11-02T10:00:00Z", "compact-a"), ev("pt-C2", "deactivate", "2026-11-03T10:00:00Z", "compact-b")];
    const first = await report(office.id!, events);
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(office.id!));
    const kept = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ key_hash: string; response: string }>("SELECT key_hash, response FROM idempotency").toArray());
    expect(kept).toHaveLength(2);
    for (const row of kept) {
      const stored = JSON.parse(row.response) as unknown[];
      expect(stored).toHaveLength(3); // id, recorded at, state: no pseudonym, kind or time
      expect(row.response).not.toMatch(/[0-9a-f]{64}/);
    }
    // An answer stored whole (as the object kept them before) replays as it is.
    const whole = first.results[1]!.event!;
    const older = { ...whole, receivedAt: "2026-11-03T10:00:01.000Z" };
    await runInDurableObject(stub, (_i, state) => {
      const id = JSON.parse(kept.find((r) => JSON.parse(r.response)[0] === whole.eventId)!.response)[0];
      state.storage.sql.exec("UPDATE idempotency SET response = ? WHERE json_extract(response, '$[0]') = ?", JSON.stringify({ ...older, officeId: office.id }), id);
    });
    const trips = await pipelines();
    const again = await report(office.id!, events);
    expect((await pipelines()) - trips).toBe(0);
    expect(again.results.map((r) => r.status)).toEqual(["replayed", "replayed"]);
    expect(again.results[0]!.event).toEqual(first.results[0]!.event);
    expect(again.results[1]!.event).toEqual(older);
    expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id!))).toHaveLength(2);
  });

  it("group commit: concurrent single reports are written together, each with its own answer, key and audit entry", async () => {
    const { db, office } = await officeWithDraft();
    const token = await mintToken("clinical_system", [office.id!]);
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(office.id!));
    await report(office.id!, [ev("pt-warm", "activate", "2026-11-02T10:00:00Z")], token);
    const operations = () => runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT operations AS n FROM office_meta").one().n);
    const opsBefore = await operations();
    const n = 24;
    const responses = await Promise.all([
      ...Array.from({ length: n }, (_, i) => send(office.id!, { events: [ev(`pt-g-${i}`, "activate", "2026-11-03T10:00:00Z", `g-${i}`)] }, { token })),
      // One key sent twice at once with different events: one is recorded, the other conflicts.
      send(office.id!, { events: [ev("pt-dup-a", "activate", "2026-11-03T10:00:00Z", "g-dup")] }, { token }),
      send(office.id!, { events: [ev("pt-dup-b", "activate", "2026-11-03T10:00:00Z", "g-dup")] }, { token }),
    ]);
    const answers = await Promise.all(responses.map(async (r) => ({ status: r.status, requestId: r.headers.get("x-request-id")!, body: (await r.json()) as Answer })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const singles = answers.slice(0, n).map((a) => a.body.results[0]!);
    expect(singles.every((r) => r.status === "applied")).toBe(true);
    expect(new Set(singles.map((r) => r.event!.eventId)).size).toBe(n);
    expect(new Set(singles.map((r) => r.event!.patientKey)).size).toBe(n);
    expect(answers.slice(n).map((a) => a.body.results[0]!.status).sort()).toEqual(["applied", "conflict"]);
    // Fewer batches than requests: the ones that waited went in together.
    const batches = (await operations()) - opsBefore;
    expect(batches).toBeLessThan(n);
    // Each request its own audit entry (the single-report form), with its own request id.
    const entries = await db.select().from(auditLog).where(and(eq(auditLog.chain, office.id!), inArray(auditLog.requestId, answers.slice(0, n).map((a) => a.requestId))));
    expect(entries).toHaveLength(n);
    for (const [i, a] of answers.slice(0, n).entries()) {
      const entry = entries.find((e) => e.requestId === a.requestId)!;
      expect(entry, `request ${i}`).toMatchObject({ action: "patient.activate", outcome: "succeeded" });
      expect(entry.targetIds).toEqual([a.body.results[0]!.event!.eventId, a.body.results[0]!.event!.patientKey]);
    }
    const verify = await SELF.fetch(`https://billing.test/v1/audit/verify?officeId=${office.id}`, { headers: bearer(await mintToken("platform_admin")) });
    expect(await verify.json()).toMatchObject({ ok: true });
  }, 60_000);

  it("an office's object refuses events for another office (a routing bug) instead of leaving them waiting", async () => {
    const { office } = await officeWithDraft();
    const other = await seedOffice(testDb());
    await report(office.id!, [ev("pt-bind", "activate", "2026-11-02T10:00:00Z")]);
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(office.id!));
    const request = { kind: "activate" as const, rootPatientKey: "a".repeat(64), occurredAt: Date.parse("2026-11-02T10:00:00Z"), idempotencyKeyHash: "b".repeat(64) };
    const actor = { actorSub: "test", actorRole: "platform_admin", requestId: "req_test" };
    const [refused, again] = await Promise.all([stub.patientEvents(other.id!, [request], actor), stub.patientEvents(other.id!, [request], actor)]);
    for (const r of [refused, again]) expect(r).toMatchObject({ ok: false, error: { code: "CONFLICT" } });
    // The object still serves its own office.
    expect((await report(office.id!, [ev("pt-bind-2", "activate", "2026-11-02T10:00:00Z")])).counts.applied).toBe(1);
  });

  describe("bad input gets a clear 4xx", () => {
    it("refuses an empty batch, more than 1,000 events, undeclared fields and malformed events, for the whole request", async () => {
      const { db, office } = await officeWithDraft();
      const ok = ev("pt-1", "activate", "2026-11-02T10:00:00Z");
      await expectProblem(await send(office.id!, { events: [] }), 400, "VALIDATION_FAILED");
      await expectProblem(await send(office.id!, {}), 400, "VALIDATION_FAILED");
      const many = Array.from({ length: 1001 }, (_, i) => ({ ...ok, idempotencyKey: `m-${i}` }));
      await expectProblem(await send(office.id!, { events: many }), 400, "VALIDATION_FAILED");
      for (const bad of [
        { ...ok, patientName: "Jane Roe 1980-02-03" },
        { ...ok, patientId: "Jane Roe 1980-02-03" },
        { ...ok, occurredAt: "last tuesday" },
        { ...ok, kind: "admit" },
        { ...ok, idempotencyKey: "" },
      ]) {
        const body = await expectProblem(await send(office.id!, { events: [ok, bad] }), 400, "VALIDATION_FAILED");
        expect(JSON.stringify(body)).toContain("events");
        expect(JSON.stringify(body)).not.toContain("Jane Roe");
      }
      await expectProblem(await send(office.id!, null, { raw: "{not json" }), 400, "BAD_REQUEST");
      await expectProblem(await send(office.id!, { events: [ok] }, { headers: { "content-type": "text/plain" } }), 415, "UNSUPPORTED_MEDIA_TYPE");
      expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id!))).toEqual([]);
    });

    it("answers future times invalid and audits the refusal; 404 for an office that does not exist", async () => {
      const { db, office } = await officeWithDraft();
      const res = await send(office.id!, { events: [ev("pt-f", "activate", new Date(Date.now() + 3_600_000).toISOString())] });
      const answer = (await res.json()) as Answer;
      expect(answer.results[0]).toMatchObject({ status: "invalid", code: "OCCURRED_AT_OUT_OF_RANGE", field: "occurredAt" });
      const [entry] = await db.select().from(auditLog).where(eq(auditLog.requestId, res.headers.get("x-request-id")!));
      expect(entry).toMatchObject({ action: "patient.activate", outcome: "failed" });
      await expectProblem(await send("off_00000000000000000000000000000000", { events: [ev("pt-1", "activate", "2026-11-02T10:00:00Z")] }, { token: await mintToken("platform_admin") }), 404, "NOT_FOUND");
    });

    it("takes bodies up to 1 MiB on this route only, with or without Content-Length", async () => {
      const office = await seedOffice(testDb());
      const pad = "x".repeat(1024 * 1024);
      await expectProblem(await send(office.id!, { events: [ev("pt-1", "activate", "2026-11-02T10:00:00Z")], pad }), 413, "PAYLOAD_TOO_LARGE");
      const chunk = new TextEncoder().encode(`{"pad":"${"x".repeat(256 * 1024)}`);
      const chunked = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 5; i++) controller.enqueue(chunk);
          controller.close();
        },
      });
      await expectProblem(await send(office.id!, null, { raw: chunked }), 413, "PAYLOAD_TOO_LARGE");
      // Under 1 MiB but over 64 KiB: read, then refused by its schema (not its size).
      await expectProblem(await send(office.id!, { events: [ev("pt-1", "activate", "2026-11-02T10:00:00Z")], pad: "x".repeat(100 * 1024) }), 400, "VALIDATION_FAILED");
      // Every other route keeps 64 KiB.
      const other = await SELF.fetch(`${base}/${office.id}/patients/pt-1/activate`, {
        method: "POST",
        headers: { ...bearer(await mintToken("clinical_system", [office.id!])), "content-type": "application/json", "idempotency-key": "k" },
        body: JSON.stringify({ occurredAt: "2026-11-02T10:00:00Z", pad: "x".repeat(100 * 1024) }),
      });
      await expectProblem(other, 413, "PAYLOAD_TOO_LARGE");
    });
  });

  describe("security", () => {
    it("is for the office's clinical system and platform admins only, and never answers with a patient id", async () => {
      const { db, office } = await officeWithDraft();
      const other = await seedOffice(db);
      const body = { events: [ev("CANARY-MRN-77123", "activate", "2026-11-02T10:00:00Z")] };
      for (const [token, status] of [
        [await mintToken("office_viewer", [office.id!]), 403],
        [await mintToken("office_admin", [office.id!]), 403],
        [await mintToken("clinical_system", [other.id!]), 404],
        ["not-a-token", 401],
      ] as const) {
        const res = await send(office.id!, body, { token });
        expect(res.status).toBe(status);
        expect(await res.text()).not.toContain("CANARY-MRN-77123");
      }
      expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id!))).toEqual([]);
      const ok = await send(office.id!, body, { token: await mintToken("platform_admin") });
      expect(ok.status).toBe(200);
      expect(await ok.text()).not.toContain("CANARY-MRN-77123");
    });

    it("takes patient ids in the body only; the path-id routes are deprecated in the reference, with the reason", async () => {
      const doc = (await (await SELF.fetch("https://billing.test/openapi.json")).json()) as { paths: Record<string, Record<string, { deprecated?: boolean; description?: string; parameters?: { name: string }[] }>> };
      const bulk = doc.paths["/v1/offices/{officeId}/patient-events"]!.post!;
      expect(bulk.deprecated).toBeUndefined();
      expect((bulk.parameters ?? []).map((p) => p.name)).toEqual(["officeId"]);
      for (const kind of ["activate", "deactivate"]) {
        const op = doc.paths[`/v1/offices/{officeId}/patients/{patientId}/${kind}`]!.post!;
        expect(op.deprecated).toBe(true);
        expect(op.description).toMatch(/access logs/);
        expect(op.description).toContain("/v1/offices/{officeId}/patient-events");
      }
      // No other route but these two deprecated ones carries a patient id in its path.
      const withPatient = Object.keys(doc.paths).filter((p) => /patient(Id)?\}/i.test(p));
      expect(withPatient.sort()).toEqual(["/v1/offices/{officeId}/patients/{patientId}/activate", "/v1/offices/{officeId}/patients/{patientId}/deactivate"]);
    });
  });
});
