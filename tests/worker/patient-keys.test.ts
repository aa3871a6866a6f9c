import { env, runInDurableObject, SELF } from "cloudflare:test";
import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { utcDate } from "../../src/clock";
import { auditLog } from "../../src/db/audit";
import { invoicePatients } from "../../src/db/invoices";
import { offices } from "../../src/db/offices";
import { patientEvents, patients } from "../../src/db/patients";
import { advancePatientKey, hmacSha256Hex, patientKey } from "../../src/security/crypto";
import { bearer, mintToken } from "../harness/auth";
import { onboardOffice } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";
import type { OfficeBilling } from "../../src/office/office-billing";

const chain = String(env.PATIENT_KEY_CHAIN).split(",");
const api = "https://billing.test/v1";

async function report(officeId: string, patientId: string, kind: "activate" | "deactivate", key: string, occurredAt = new Date().toISOString()) {
  return SELF.fetch(`${api}/offices/${officeId}/patients/${patientId}/${kind}`, {
    method: "POST",
    headers: { ...bearer(await mintToken("clinical_system", [officeId])), "content-type": "application/json", "idempotency-key": key },
    body: JSON.stringify({ occurredAt }),
  });
}

async function rotate(body: unknown, token?: string) {
  return SELF.fetch(`${api}/admin/patient-keys/rotate`, {
    method: "POST",
    headers: { ...bearer(token ?? (await mintToken("platform_admin"))), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** An office onboarded through the API, then put back to version 1 before it has any patient: one from before the rotation. */
async function officeAtVersion1() {
  const officeId = await onboardOffice({ startsOn: utcDate(Date.now()).slice(0, 8) + "01" });
  await testDb().update(offices).set({ patientKeyVersion: 1 }).where(eq(offices.id, officeId));
  // The office object keeps its own copy of the version (it is the one writer of it): set it back too.
  await runInDurableObject(env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId)), (_instance, state) => {
    state.storage.sql.exec("UPDATE patient_key_state SET version = 1 WHERE id = 1");
  });
  return officeId;
}

async function storedKeys(officeId: string) {
  const db = testDb();
  const [p, e, i] = await db.batch([
    db.select({ k: patients.patientKey }).from(patients).where(eq(patients.officeId, officeId)),
    db.select({ k: patientEvents.patientKey }).from(patientEvents).where(eq(patientEvents.officeId, officeId)),
    db.select({ k: invoicePatients.patientKey }).from(invoicePatients).where(eq(invoicePatients.officeId, officeId)),
  ]);
  return { patients: p.map((r) => r.k).sort(), events: [...new Set(e.map((r) => r.k))].sort(), billed: [...new Set(i.map((r) => r.k))].sort() };
}

describe("patient key rotation (PATIENT_KEY_CHAIN, POST /v1/admin/patient-keys/rotate)", () => {
  it("chains versions: version n+1 is HMAC(secret n+1, version n), so a raw id is hashed through the whole chain", async () => {
    const v1 = await patientKey(String(env.PATIENT_KEY_SECRET), "off_x", "pt-1");
    expect(await advancePatientKey(chain, v1, 1, 2)).toBe(await hmacSha256Hex(chain[0]!, v1));
    expect(await advancePatientKey(chain, v1, 1, 1)).toBe(v1);
    await expect(advancePatientKey(chain, v1, 1, chain.length + 2)).rejects.toThrow(/out of range/);
  });

  it("onboards a new office at the current version, and records its events under it", async () => {
    const officeId = await onboardOffice({ startsOn: utcDate(Date.now()).slice(0, 8) + "01" });
    const [row] = await testDb().select().from(offices).where(eq(offices.id, officeId));
    expect(row!.patientKeyVersion).toBe(chain.length + 1);
    const res = await report(officeId, "pt-new", "activate", crypto.randomUUID());
    expect(res.status).toBe(200);
    const v1 = await patientKey(String(env.PATIENT_KEY_SECRET), officeId, "pt-new");
    expect(((await res.json()) as { patientKey: string }).patientKey).toBe(await advancePatientKey(chain, v1, 1, chain.length + 1));
  });

  it("re-keys every table of an office from the stored pseudonyms; replays, lookups and new events carry on under the new version", async () => {
    const db = testDb();
    const officeId = await officeAtVersion1();
    const idem = crypto.randomUUID();
    const at = new Date().toISOString();
    const first = await report(officeId, "pt-a", "activate", idem, at);
    expect(first.status).toBe(200);
    const a1 = (await first.json()) as { patientKey: string; eventId: string };
    expect(a1.patientKey).toBe(await patientKey(String(env.PATIENT_KEY_SECRET), officeId, "pt-a")); // version 1
    expect((await report(officeId, "pt-b", "activate", crypto.randomUUID())).status).toBe(200);
    expect((await report(officeId, "pt-b", "deactivate", crypto.randomUUID())).status).toBe(200);
    const before = await storedKeys(officeId);
    expect(before.patients).toHaveLength(2);
    expect(before.billed.length).toBeGreaterThan(0);

    const res = await rotate({ officeId });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ currentVersion: 2, rekeyed: 1, patients: 2, failed: [], remaining: 0, nextCursor: null });

    // Every pseudonym is HMAC(v2 secret, its version-1 self); none of version 1 is left anywhere.
    const after = await storedKeys(officeId);
    const moved = async (keys: string[]) => (await Promise.all(keys.map((k) => hmacSha256Hex(chain[0]!, k)))).sort();
    expect(after.patients).toEqual(await moved(before.patients));
    expect(after.events).toEqual(await moved(before.events));
    expect(after.billed).toEqual(await moved(before.billed));
    const [row] = await db.select().from(offices).where(eq(offices.id, officeId));
    expect(row!.patientKeyVersion).toBe(2);

    // The same Idempotency-Key and request replays the first answer, now under the new pseudonym.
    const replay = await report(officeId, "pt-a", "activate", idem, at);
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(((await replay.json()) as { eventId: string; patientKey: string })).toMatchObject({ eventId: a1.eventId, patientKey: await hmacSha256Hex(chain[0]!, a1.patientKey) });
    // ...and the same key with another request is still a conflict.
    await expectProblem(await report(officeId, "pt-a", "deactivate", idem), 409, "CONFLICT");

    // A new event for a known patient finds its row (no second patient).
    const later = (await (await report(officeId, "pt-a", "deactivate", crypto.randomUUID())).json()) as { patientKey: string; active: boolean };
    expect(later).toMatchObject({ patientKey: await hmacSha256Hex(chain[0]!, a1.patientKey), active: false });
    expect((await storedKeys(officeId)).patients).toHaveLength(2);

    // Re-runnable: nothing left to do.
    expect(await (await rotate({ officeId })).json()).toMatchObject({ rekeyed: 0, patients: 0, remaining: 0 });

    // On the office's audit chain, with version numbers and counts, never a raw id.
    const entries = await db.select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "patient_keys.rotate"), eq(auditLog.chain, officeId)));
    expect(entries).toHaveLength(1); // the second run moved nothing and wrote nothing there
    expect(entries[0]!.details).toMatchObject({ fromVersion: 1, toVersion: 2, patients: 2 });
    expect(JSON.stringify(entries)).not.toContain("pt-a");
  });

  it("loses no event reported while the office is being re-keyed", async () => {
    const officeId = await officeAtVersion1();
    for (const p of ["pt-0", "pt-1"]) expect((await report(officeId, p, "activate", crypto.randomUUID())).status).toBe(200);
    const ids = Array.from({ length: 8 }, (_, i) => `pt-c${i}`);
    const [rotation, ...events] = await Promise.all([rotate({ officeId }), ...ids.map((p) => report(officeId, p, "activate", crypto.randomUUID()))]);
    expect(rotation.status).toBe(200);
    expect(events.map((r) => r.status)).toEqual(ids.map(() => 200));
    // Whichever side of the rotation each event landed on, it ends under version 2, once.
    const expected = await Promise.all(
      ["pt-0", "pt-1", ...ids].map(async (p) => hmacSha256Hex(chain[0]!, await patientKey(String(env.PATIENT_KEY_SECRET), officeId, p))),
    );
    expect((await storedKeys(officeId)).patients).toEqual(expected.sort());
    const [{ n }] = (await testDb().select({ n: sql<number>`count(*)` }).from(patientEvents).where(eq(patientEvents.officeId, officeId))) as [{ n: number }];
    expect(Number(n)).toBe(10);
  });

  it("carries an event prepared before a rotation, and recorded after it, to the new version", async () => {
    const officeId = await officeAtVersion1();
    const root = (p: string) => patientKey(String(env.PATIENT_KEY_SECRET), officeId, p);
    const event = async (p: string) => ({ kind: "activate" as const, rootPatientKey: await root(p), occurredAt: Date.now() - 1000, idempotencyKeyHash: await hmacSha256Hex("k", crypto.randomUUID()) });
    const actor = { actorSub: "test", actorRole: "platform_admin", requestId: "req_test" };
    const [first, second] = [await event("pt-before"), await event("pt-after")];
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
    const answers = await runInDurableObject(stub, async (instance: OfficeBilling) => {
      const one = instance.patientEvents(officeId, [first], actor); // its batch is the object's next operation
      const rotation = instance.rekeyPatients(officeId, actor); // queued behind that batch
      await new Promise((r) => setTimeout(r, 0)); // the batch has taken its group and waits for the database
      const two = instance.patientEvents(officeId, [second], actor); // prepared at version 1, recorded after the rotation
      return Promise.all([one, rotation, two]);
    });
    expect(answers.map((a) => a.ok)).toEqual([true, true, true]);
    const v2 = async (p: string) => hmacSha256Hex(chain[0]!, await root(p));
    type Answer = { ok: true; value: { event: { eventId: string; patientKey: string } }[] };
    const [one, , two] = answers as [Answer, unknown, Answer];
    expect(one.value[0]!.event.patientKey).toBe(await root("pt-before")); // recorded before the rotation, at version 1
    expect(two.value[0]!.event.patientKey).toBe(await v2("pt-after"));
    expect((await storedKeys(officeId)).patients).toEqual([await v2("pt-before"), await v2("pt-after")].sort());
    // The first event's answer, kept in the object's store after its batch (a turn of the event
    // loop later), went with the rotation: its replay is answered from the database, under the new
    // version, not refused as a conflict by the old request hash.
    const replay = await runInDurableObject(stub, (instance: OfficeBilling) => instance.patientEvents(officeId, [first], actor));
    expect(replay).toMatchObject({ ok: true, value: [{ status: "replayed", event: { eventId: one.value[0]!.event.eventId, patientKey: await v2("pt-before") } }] });
  });

  it("continues from a cursor, one batch at a time, and is for platform_admin only, with a validated body", async () => {
    const o1 = await officeAtVersion1();
    expect((await report(o1, "pt-z", "activate", crypto.randomUUID())).status).toBe(200);
    // Scoped to this office (a whole-database pass would re-key other tests' offices under them).
    expect(await (await rotate({ officeId: o1, cursor: o1 })).json()).toMatchObject({ rekeyed: 0, remaining: 1, nextCursor: null }); // nothing after the cursor
    expect(await (await rotate({ officeId: o1, batchSize: 1 })).json()).toMatchObject({ rekeyed: 1, remaining: 0, nextCursor: o1 }); // a full batch: maybe more
    expect(await (await rotate({ officeId: o1, batchSize: 1, cursor: o1 })).json()).toMatchObject({ rekeyed: 0, remaining: 0, nextCursor: null });
    const [row] = await testDb().select().from(offices).where(eq(offices.id, o1));
    expect(row!.patientKeyVersion).toBe(2);

    await expectProblem(await rotate({}, await mintToken("office_admin", [o1])), 403, "FORBIDDEN");
    await expectProblem(await rotate({ batchSize: 0 }), 400, "VALIDATION_FAILED");
    await expectProblem(await rotate({ cursor: "not-an-office" }), 400, "VALIDATION_FAILED");
    await expectProblem(await rotate({ everything: true }), 400, "VALIDATION_FAILED");
  });

  it("keeps office onboarding ids and Idempotency-Key hashes: they are keyed with the chain's root, which rotation never replaces", async () => {
    const { createExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../../src/index")).default;
    const { seedPlan } = await import("../harness/seed");
    const { planId } = await seedPlan(testDb(), { setupFee: 0 });
    const key = `onboard-${crypto.randomUUID()}`;
    const onboardUnder = async (envOverride: Record<string, unknown>) =>
      worker.fetch(
        new Request(`${api}/offices`, {
          method: "POST",
          headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json", "idempotency-key": key },
          body: JSON.stringify({ legalName: "Harbor Pediatrics PC", billingEmail: "billing@harbor.example", timeZone: "America/New_York", billingAnchorDay: 1, planId, startsOn: "2026-11-20" }),
        }),
        { ...env, ...envOverride },
        createExecutionContext(),
      );
    // Onboarded before the first rotation (no chain), retried after one more link was appended.
    const first = await onboardUnder({ PATIENT_KEY_CHAIN: undefined });
    expect(first.status).toBe(201);
    const { id } = (await first.json()) as { id: string };
    const retry = await onboardUnder({ PATIENT_KEY_CHAIN: `${env.PATIENT_KEY_CHAIN},${"n".repeat(8)}${crypto.randomUUID()}` });
    expect(retry.status).toBe(201);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(((await retry.json()) as { id: string }).id).toBe(id);

    // A patient event's Idempotency-Key hash is the same under either configuration.
    const { requestKeySecret, loadConfig } = await import("../../src/config");
    expect(requestKeySecret(loadConfig({ ...env, PATIENT_KEY_CHAIN: undefined }))).toBe(requestKeySecret(loadConfig(env)));
  });
});
