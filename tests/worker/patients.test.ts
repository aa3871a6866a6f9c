import { env, runInDurableObject, SELF } from "cloudflare:test";
import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { offices } from "../../src/db/offices";
import { patientEvents, patients } from "../../src/db/patients";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { seedOffice, testDb } from "../harness/seed";

const base = "https://billing.test/v1/offices";

async function report(
  officeId: string,
  patientId: string,
  kind: "activate" | "deactivate",
  opts: { key?: string; occurredAt?: string; body?: unknown; token?: string; headers?: Record<string, string> } = {},
) {
  const token = opts.token ?? (await mintToken("clinical_system", [officeId]));
  return SELF.fetch(`${base}/${officeId}/patients/${encodeURIComponent(patientId)}/${kind}`, {
    method: "POST",
    headers: {
      ...bearer(token),
      "content-type": "application/json",
      ...(opts.key === "" ? {} : { "idempotency-key": opts.key ?? crypto.randomUUID() }),
      ...opts.headers,
    },
    body: JSON.stringify(opts.body ?? { occurredAt: opts.occurredAt ?? new Date().toISOString() }),
  });
}

type Answer = { eventId: string; patientKey: string; kind: string; applied: boolean; active: boolean; occurredAt: string };

describe("POST /v1/offices/{officeId}/patients/{patientId}/activate|deactivate", () => {
  it("activates and deactivates a patient, keeping only the pseudonym", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    const res = await report(office.id, "pt-1001", "activate", { occurredAt: "2026-11-02T10:00:00Z" });
    expect(res.status).toBe(200);
    const a = (await res.json()) as Answer;
    expect(a).toMatchObject({ kind: "activate", applied: true, active: true, occurredAt: "2026-11-02T10:00:00.000Z" });
    expect(a.patientKey).toMatch(/^[0-9a-f]{64}$/);

    const d = (await (await report(office.id, "pt-1001", "deactivate", { occurredAt: "2026-11-05T10:00:00Z" })).json()) as Answer;
    expect(d).toMatchObject({ kind: "deactivate", applied: true, active: false, patientKey: a.patientKey });

    const [state] = await db.select().from(patients).where(eq(patients.officeId, office.id));
    expect(state).toMatchObject({ patientKey: a.patientKey, active: false, changedAt: Date.parse("2026-11-05T10:00:00Z") });
    const events = await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id));
    expect(events.map((e) => e.kind).sort()).toEqual(["activate", "deactivate"]);
  });

  it("gives the same patient id a different pseudonym in another office", async () => {
    const db = testDb();
    const [o1, o2] = [await seedOffice(db), await seedOffice(db)];
    const a1 = (await (await report(o1.id, "pt-same", "activate")).json()) as Answer;
    const a2 = (await (await report(o2.id, "pt-same", "activate")).json()) as Answer;
    expect(a1.patientKey).not.toBe(a2.patientKey);
  });

  it("orders by event time, not arrival: a late older event is recorded but not applied", async () => {
    const office = await seedOffice(testDb());
    await report(office.id, "pt-late", "activate", { occurredAt: "2026-11-10T09:00:00Z" });
    const late = (await (await report(office.id, "pt-late", "deactivate", { occurredAt: "2026-11-03T09:00:00Z" })).json()) as Answer;
    expect(late).toMatchObject({ applied: false, active: true });
  });

  it("replays the first answer for the same Idempotency-Key, and refuses the key with another request", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    const first = await report(office.id, "pt-idem", "activate", { key: "k-1", occurredAt: "2026-11-02T10:00:00Z" });
    const body = await first.json();
    const again = await report(office.id, "pt-idem", "activate", { key: "k-1", occurredAt: "2026-11-02T10:00:00Z" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(body);
    expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id))).toHaveLength(1);

    await expectProblem(await report(office.id, "pt-idem", "activate", { key: "k-1", occurredAt: "2026-11-03T10:00:00Z" }), 409, "CONFLICT");
    await expectProblem(await report(office.id, "pt-other", "activate", { key: "k-1", occurredAt: "2026-11-02T10:00:00Z" }), 409, "CONFLICT");
  });

  it("refuses activations for a canceled office with 409, and audits the refusal", async () => {
    const db = testDb();
    const office = await seedOffice(db, { status: "canceled" });
    await expectProblem(await report(office.id, "pt-x", "activate"), 409, "CONFLICT");
    const entries = await db.select().from(auditLog).where(and(eq(auditLog.chain, office.id), eq(auditLog.action, "patient.activate")));
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ outcome: "failed" });
    // A deactivation is still recorded (the clinical record stays truthful).
    expect((await report(office.id, "pt-x", "deactivate")).status).toBe(200);
  });

  it("refuses event times before the office's window (366 days before its first day) with 400, recording nothing (issue 14 item 4)", async () => {
    const db = testDb();
    const office = await seedOffice(db, { billingStart: "2026-01-15" });
    // The window opens at 00:00 UTC of 2026-01-15 less 366 days: 2025-01-14T00:00:00Z.
    for (const occurredAt of ["0000-01-01T00:00:00Z", "1947-08-15T00:00:00Z", "1998-12-30T23:59:59Z"]) {
      const body = await expectProblem(await report(office.id, "pt-old", "activate", { occurredAt }), 400, "VALIDATION_FAILED");
      expect(body.errors).toEqual([expect.objectContaining({ path: "occurredAt" })]);
    }
    for (const kind of ["activate", "deactivate"] as const) {
      const body = await expectProblem(await report(office.id, "pt-old", kind, { occurredAt: "2025-01-13T23:59:59.999Z" }), 400, "VALIDATION_FAILED");
      expect(body.errors).toEqual([{ path: "occurredAt", message: "must not be before 2025-01-14T00:00:00.000Z" }]);
    }
    expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id))).toEqual([]);
    // The refusal is audited on the office's chain.
    const refused = await db.select().from(auditLog).where(and(eq(auditLog.chain, office.id), eq(auditLog.action, "patient.deactivate")));
    expect(refused.map((e) => e.outcome)).toEqual(["failed"]);
    // The window's first instant, and anything after it, is taken.
    const first = await report(office.id, "pt-old", "activate", { occurredAt: "2025-01-14T00:00:00Z" });
    expect(first.status, await first.clone().text()).toBe(200);
    expect(((await first.json()) as Answer).active).toBe(true);
  });

  it("sees a cancellation made after its first activation (no stale office status)", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    expect((await report(office.id, "pt-s1", "activate")).status).toBe(200);
    await db.update(offices).set({ status: "canceled" }).where(eq(offices.id, office.id));
    await expectProblem(await report(office.id, "pt-s2", "activate"), 409, "CONFLICT");
  });

  it("replays the first answer from the database when the office object lost its store", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    const first = await report(office.id, "pt-lost", "activate", { key: "lost-1", occurredAt: "2026-11-02T10:00:00Z" });
    const firstAnswer = (await first.json()) as Answer;
    expect(firstAnswer.active).toBe(true);
    await report(office.id, "pt-lost", "deactivate", { occurredAt: "2026-11-03T10:00:00Z" });
    await db.update(offices).set({ status: "canceled" }).where(eq(offices.id, office.id));
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(office.id));
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("DELETE FROM idempotency");
    });
    const again = await report(office.id, "pt-lost", "activate", { key: "lost-1", occurredAt: "2026-11-02T10:00:00Z" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(firstAnswer);
    await expectProblem(await report(office.id, "pt-lost", "activate", { key: "lost-1", occurredAt: "2026-11-09T10:00:00Z" }), 409, "CONFLICT");
    expect(await db.select().from(patientEvents).where(eq(patientEvents.officeId, office.id))).toHaveLength(2);
  });

  it("keeps the office's audit chain verifiable through patient events", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    await report(office.id, "pt-v", "activate");
    await report(office.id, "pt-v", "deactivate");
    await report(office.id, "pt-v", "activate", { token: await mintToken("office_viewer", [office.id]) }); // a denial on the office chain
    const res = await SELF.fetch(`https://billing.test/v1/audit/verify?officeId=${office.id}`, { headers: bearer(await mintToken("platform_admin")) });
    expect(await res.json()).toMatchObject({ ok: true, entries: 3 });
  });

  it("answers 404 for an office that does not exist (platform_admin)", async () => {
    const res = await report("off_00000000000000000000000000000000", "pt-1", "activate", { token: await mintToken("platform_admin") });
    await expectProblem(res, 404, "NOT_FOUND");
  });

  it("writes the event, the state and its audit entry together, with the actor and request id", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    const token = await mintToken("clinical_system", [office.id], { sub: "clinical-app" });
    const res = await report(office.id, "pt-audit", "activate", { token });
    const requestId = res.headers.get("x-request-id")!;
    const a = (await res.json()) as Answer;
    const [entry] = await db.select().from(auditLog).where(eq(auditLog.requestId, requestId));
    expect(entry).toMatchObject({ chain: office.id, action: "patient.activate", outcome: "succeeded", actorSub: "clinical-app", actorRole: "clinical_system" });
    expect(entry!.targetIds).toEqual([a.eventId, a.patientKey]);
  });

  describe("bad input gets a clear 4xx", () => {
    it("requires an Idempotency-Key", async () => {
      const office = await seedOffice(testDb());
      const body = await expectProblem(await report(office.id, "pt-1", "activate", { key: "" }), 400, "VALIDATION_FAILED");
      expect(JSON.stringify(body.errors)).toContain("idempotency-key");
    });

    it("refuses undeclared fields, naming them: nothing a person typed about a patient is accepted", async () => {
      const office = await seedOffice(testDb());
      for (const field of ["patientName", "dateOfBirth", "ssn", "address", "phone", "notes"]) {
        const res = await report(office.id, "pt-1", "activate", { body: { occurredAt: new Date().toISOString(), [field]: "Jane Roe 1980-02-03" } });
        const body = await expectProblem(res, 400, "VALIDATION_FAILED");
        expect(JSON.stringify(body), field).toContain(field);
        expect(JSON.stringify(body)).not.toContain("Jane Roe");
      }
    });

    it("refuses a malformed or future event time, malformed JSON and a wrong patient id", async () => {
      const office = await seedOffice(testDb());
      await expectProblem(await report(office.id, "pt-1", "activate", { body: { occurredAt: "last tuesday" } }), 400, "VALIDATION_FAILED");
      await expectProblem(await report(office.id, "pt-1", "activate", { body: {} }), 400, "VALIDATION_FAILED");
      await expectProblem(await report(office.id, "pt-1", "activate", { occurredAt: new Date(Date.now() + 3_600_000).toISOString() }), 400, "VALIDATION_FAILED");
      const token = await mintToken("clinical_system", [office.id]);
      const malformed = await SELF.fetch(`${base}/${office.id}/patients/pt-1/activate`, {
        method: "POST",
        headers: { ...bearer(token), "content-type": "application/json", "idempotency-key": "k" },
        body: "{not json",
      });
      await expectProblem(malformed, 400, "BAD_REQUEST");
      await expectProblem(await report(office.id, "pt 1 with spaces", "activate"), 400, "VALIDATION_FAILED");
      await expectProblem(await report("office-123", "pt-1", "activate", { token: await mintToken("platform_admin") }), 400, "VALIDATION_FAILED");
    });

    it("refuses bodies over 64 KiB with 413, with or without Content-Length", async () => {
      const office = await seedOffice(testDb());
      const res = await report(office.id, "pt-1", "activate", { body: { occurredAt: new Date().toISOString(), pad: "x".repeat(70 * 1024) } });
      await expectProblem(res, 413, "PAYLOAD_TOO_LARGE");
      const chunk = new TextEncoder().encode(`{"pad":"${"x".repeat(16 * 1024)}`);
      const chunked = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 5; i++) controller.enqueue(chunk);
          controller.close();
        },
      });
      const streamed = await SELF.fetch(`${base}/${office.id}/patients/pt-1/activate`, {
        method: "POST",
        headers: { ...bearer(await mintToken("clinical_system", [office.id])), "content-type": "application/json", "idempotency-key": "k-chunked" },
        body: chunked,
      });
      await expectProblem(streamed, 413, "PAYLOAD_TOO_LARGE");
    });

    it("refuses a body that is not JSON with 415 (no validator is ever skipped)", async () => {
      const office = await seedOffice(testDb());
      const res = await report(office.id, "pt-1", "activate", { headers: { "content-type": "text/plain" } });
      await expectProblem(res, 415, "UNSUPPORTED_MEDIA_TYPE");
    });
  });
});

describe("no table holds a raw patient identifier", () => {
  it("stores only pseudonyms, whatever the flow", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    const rawIds = Array.from({ length: 5 }, (_, i) => `CANARY-MRN-${crypto.randomUUID().slice(0, 8)}-${i}`);
    for (const [i, id] of rawIds.entries()) {
      expect((await report(office.id, id, "activate", { key: `key-${i}-${crypto.randomUUID()}` })).status).toBe(200);
      expect((await report(office.id, id, "deactivate")).status).toBe(200);
      // Refused requests are audited, but never with the raw id.
      await report(office.id, id, "activate", { body: { occurredAt: new Date().toISOString(), note: id } });
      for (const r of [
        await report(office.id, id, "activate", { token: "not-a-token" }),
        await SELF.fetch(`${base}/${office.id}/%70atients/${id}/activate`, { method: "POST" }),
        await SELF.fetch(`${base}/${office.id}/Patients/${id}/activate`, { method: "POST", headers: bearer(await mintToken("platform_admin")) }),
      ]) {
        expect([401, 404]).toContain(r.status);
        expect(await r.text()).not.toContain(id);
      }
      await report(office.id, id, "activate", { token: await mintToken("office_viewer", [office.id]) });
      await report(office.id, id, "activate", { token: await mintToken("clinical_system", []) });
    }
    // Every text column of every table.
    const tables = await db.all<{ name: string }>(sql`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`);
    let scanned = 0;
    for (const { name } of tables) {
      const cols = await db.all<{ name: string; type: string }>(sql.raw(`PRAGMA table_info("${name}")`));
      for (const col of cols.filter((c) => /TEXT|^$/i.test(c.type))) {
        for (const id of rawIds) {
          const hits = await db.all<{ n: number }>(sql.raw(`SELECT count(*) AS n FROM "${name}" WHERE instr("${col.name}", '${id}') > 0`));
          expect(hits[0]!.n, `${name}.${col.name} holds a raw patient id`).toBe(0);
          scanned++;
        }
      }
    }
    expect(scanned).toBeGreaterThan(50);
  }, 240_000); // heavy: many requests; generous for a busy machine
});
