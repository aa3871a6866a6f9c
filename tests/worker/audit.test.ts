import { env, SELF } from "cloudflare:test";
import { and, asc, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { newId } from "../../src/security/request-id";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";

const base = "https://billing.test/v1/audit";

/** Appends `n` entries to a fresh office's chain through its Durable Object (the chain's writer). */
async function officeChain(n: number) {
  const officeId = newId("off");
  const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
  for (let i = 1; i <= n; i++) {
    const r = await stub.audit(officeId, [
      { action: `test.step${i}`, outcome: "succeeded", actorSub: "tester", actorRole: "platform_admin", officeId, targetIds: [`t${i}`] },
    ]);
    expect(r).toEqual({ ok: true, value: { seq: i } });
  }
  return officeId;
}

async function verify(officeId?: string) {
  const res = await SELF.fetch(`${base}/verify${officeId ? `?officeId=${officeId}` : ""}`, { headers: bearer(await mintToken("platform_admin")) });
  expect(res.status).toBe(200);
  return (await res.json()) as { ok: boolean; entries: number; chain: string; firstBroken?: { seq: number; reason: string } };
}

/** Tampering as someone with direct database access would: the append-only triggers are lifted
 * and restored inside one transaction, so other test files never see them missing. */
async function tamper(...statements: ReturnType<typeof sql>[]) {
  const db = testDb();
  await db.batch([
    db.run(sql`DROP TRIGGER audit_log_no_update`),
    db.run(sql`DROP TRIGGER audit_log_no_delete`),
    ...statements.map((s) => db.run(s)),
    db.run(sql.raw("CREATE TRIGGER `audit_log_no_update` BEFORE UPDATE ON `audit_log` BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")),
    db.run(sql.raw("CREATE TRIGGER `audit_log_no_delete` BEFORE DELETE ON `audit_log` BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")),
  ]);
}

describe("GET /v1/audit", () => {
  it("lists an office's entries in order, page by page", async () => {
    const officeId = await officeChain(5);
    const token = await mintToken("platform_admin");
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const res = await SELF.fetch(`${base}?officeId=${officeId}&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { headers: bearer(token) });
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      const page = (await res.json()) as { data: { seq: number; chain: string; actor: { sub: string }; hash: string }[]; nextCursor: string | null };
      expect(page.data.length).toBeLessThanOrEqual(2);
      for (const e of page.data) {
        expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
        // The office's own chain, plus platform-chain entries about the office (these listings).
        if (e.chain === officeId) seen.push(e.seq);
        else expect(e).toMatchObject({ chain: "platform", action: "audit.list" });
      }
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it("filters by time", async () => {
    const officeId = await officeChain(2);
    const token = await mintToken("platform_admin");
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const none = await SELF.fetch(`${base}?officeId=${officeId}&from=${encodeURIComponent(future)}`, { headers: bearer(token) });
    expect(((await none.json()) as { data: unknown[] }).data).toEqual([]);
    const all = await SELF.fetch(`${base}?officeId=${officeId}&to=${encodeURIComponent(future)}`, { headers: bearer(token) });
    const entries = ((await all.json()) as { data: { chain: string }[] }).data;
    expect(entries.filter((e) => e.chain === officeId)).toHaveLength(2);
  });

  it("exports NDJSON with Accept: application/x-ndjson", async () => {
    const officeId = await officeChain(3);
    const res = await SELF.fetch(`${base}?officeId=${officeId}`, { headers: { ...bearer(await mintToken("platform_admin")), accept: "application/x-ndjson" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l) as { seq: number; chain: string; action: string });
    expect(lines.filter((l) => l.chain === officeId).map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(lines.filter((l) => l.chain !== officeId).map((l) => l.action)).toEqual(["audit.export"]);
  });

  it("records the listing itself on the platform chain", async () => {
    const officeId = await officeChain(1);
    const res = await SELF.fetch(`${base}?officeId=${officeId}`, { headers: bearer(await mintToken("platform_admin", [], { sub: "staff-7" })) });
    const requestId = res.headers.get("x-request-id")!;
    const [entry] = await testDb().select().from(auditLog).where(eq(auditLog.requestId, requestId));
    expect(entry).toMatchObject({ chain: "platform", action: "audit.list", outcome: "allowed", actorSub: "staff-7", actorRole: "platform_admin", officeId });
  });

  it("rejects bad query input with 400 problems naming the field", async () => {
    const token = await mintToken("platform_admin");
    for (const [query, field] of [
      ["officeId=not-an-office", "officeId"],
      ["from=yesterday", "from"],
      ["limit=0", "limit"],
      ["cursor=%21%21%21", "cursor"],
      ["patientName=Jane", "patientName"],
    ] as const) {
      const res = await SELF.fetch(`${base}?${query}`, { headers: bearer(token) });
      const body = await expectProblem(res, 400, "VALIDATION_FAILED");
      expect(JSON.stringify(body.errors ?? body.detail), query).toContain(field);
    }
  });
});

describe("GET /v1/audit/verify", () => {
  it("reports an intact chain as ok", async () => {
    const officeId = await officeChain(3);
    expect(await verify(officeId)).toMatchObject({ chain: officeId, ok: true, entries: 3 });
  });

  it("reports the platform chain", async () => {
    await SELF.fetch(base); // a refused request lands on the platform chain
    const verdict = await verify();
    expect(verdict).toMatchObject({ chain: "platform", ok: true });
    expect(verdict.entries).toBeGreaterThan(0);
  });

  it("finds an entry edited directly in the database", async () => {
    const officeId = await officeChain(4);
    await tamper(sql`UPDATE audit_log SET outcome = 'denied' WHERE chain = ${officeId} AND seq = 3`);
    expect(await verify(officeId)).toMatchObject({ ok: false, firstBroken: { seq: 3, reason: "content does not match its hash" } });
  });

  it("finds a deleted entry", async () => {
    const officeId = await officeChain(4);
    await tamper(sql`DELETE FROM audit_log WHERE chain = ${officeId} AND seq = 2`);
    expect(await verify(officeId)).toMatchObject({ ok: false, firstBroken: { seq: 3, reason: "entry 2 is missing" } });
  });

  it("finds reordered entries", async () => {
    const officeId = await officeChain(4);
    await tamper(
      sql`UPDATE audit_log SET seq = 1000 WHERE chain = ${officeId} AND seq = 2`,
      sql`UPDATE audit_log SET seq = 2 WHERE chain = ${officeId} AND seq = 3`,
      sql`UPDATE audit_log SET seq = 3 WHERE chain = ${officeId} AND seq = 1000`,
    );
    expect(await verify(officeId)).toMatchObject({ ok: false, firstBroken: { seq: 2, reason: "previous-hash link broken" } });
  });

  it("finds a truncated tail (the newest entry deleted)", async () => {
    const officeId = await officeChain(3);
    await tamper(sql`DELETE FROM audit_log WHERE chain = ${officeId} AND seq = 3`);
    const verdict = await verify(officeId);
    expect(verdict.ok).toBe(false);
    expect(verdict.firstBroken?.reason).toMatch(/missing \(head is 3\)/);
  });

  it("refuses to adopt a rewritten chain: appends stop and verify keeps reporting the break", async () => {
    const officeId = await officeChain(3);
    const db = testDb();
    const { entryHash } = await import("../../src/security/audit-chain");
    const rows = await db.select().from(auditLog).where(eq(auditLog.chain, officeId)).orderBy(asc(auditLog.seq));
    // Rewrite entries 2 and 3 with recomputed hashes, and forge an entry 4 on top.
    const forged = [];
    let prev = rows[0]!.hash;
    for (const seq of [2, 3, 4]) {
      const content = { chain: officeId, seq, at: Date.now(), actorSub: "intruder", actorRole: "platform_admin", action: "test.forged", officeId, targetIds: [], outcome: "succeeded" as const, requestId: null, details: null };
      const hash = await entryHash(prev, content);
      forged.push({ ...content, prevHash: prev, hash });
      prev = hash;
    }
    await tamper(
      sql`DELETE FROM audit_log WHERE chain = ${officeId} AND seq IN (2, 3)`,
      ...forged.map((f) => sql`INSERT INTO audit_log (chain, seq, at, actor_sub, actor_role, action, office_id, target_ids, outcome, request_id, details, prev_hash, hash) VALUES (${f.chain}, ${f.seq}, ${f.at}, ${f.actorSub}, ${f.actorRole}, ${f.action}, ${f.officeId}, '[]', ${f.outcome}, NULL, NULL, ${f.prevHash}, ${f.hash})`),
    );
    expect((await verify(officeId)).ok).toBe(false);
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
    const append = await stub.audit(officeId, [{ action: "test.after", outcome: "succeeded", actorSub: "tester", actorRole: "platform_admin", officeId }]);
    expect(append).toMatchObject({ ok: false, error: { code: "INTERNAL" } });
    expect((await verify(officeId)).ok).toBe(false);
  });

  it("keeps appending after a lost answer: a stale head is re-read from the database", async () => {
    const officeId = await officeChain(2);
    const db = testDb();
    // Another entry reaches the database behind the writer's back, as if an append committed but its answer was lost.
    const rows = await db.select().from(auditLog).where(and(eq(auditLog.chain, officeId))).orderBy(asc(auditLog.seq));
    const { entryHash } = await import("../../src/security/audit-chain");
    const content = { chain: officeId, seq: 3, at: Date.now(), actorSub: "tester", actorRole: "platform_admin", action: "test.lost", officeId, targetIds: [], outcome: "succeeded" as const, requestId: null, details: null };
    await db.insert(auditLog).values({ ...content, prevHash: rows[1]!.hash, hash: await entryHash(rows[1]!.hash, content) });
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
    expect(await stub.audit(officeId, [{ action: "test.after", outcome: "succeeded", actorSub: "tester", actorRole: "platform_admin", officeId }])).toEqual({ ok: true, value: { seq: 4 } });
    expect(await verify(officeId)).toMatchObject({ ok: true, entries: 4 });
  });
});
