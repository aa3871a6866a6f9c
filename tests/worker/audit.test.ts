import { createExecutionContext, env, runInDurableObject, SELF } from "cloudflare:test";
import worker from "../../src/index";
import { toBase64Url } from "../../src/security/encoding";
import { and, asc, eq, sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config";
import { auditLog } from "../../src/db/audit";
import { newId } from "../../src/security/request-id";
import { ChainWriter } from "../../src/office/chain-writer";
import { checkpointAuditChains } from "../../src/jobs/audit-checkpoints";
import { checkpointMac, entryMac, loadAuditKeyring, type AuditCheckpoint } from "../../src/security/audit-chain";
import { auditKeyring } from "../../src/security/data-keys";
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
  return (await res.json()) as Verdict;
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

type Verdict = {
  ok: boolean;
  entries: number;
  chain: string;
  head: { segment: string; seq: number; hash: string } | null;
  segments: number;
  fences: { segment: string; seq: number; reason: string }[];
  firstBroken?: { id?: number; segment: string; seq: number; reason: string };
};

const officeStub = (officeId: string) => env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
const platformStub = () => env.PLATFORM_AUDIT.get(env.PLATFORM_AUDIT.idFromName("platform"));
const noKeys = { current: "none", keys: new Map<string, CryptoKey>() };

type ForgedRow = { chain: string; segment?: string; seq: number; officeId: string | null; action: string; keyId?: string | null; prevHash: string; hash?: string };

/** What someone holding only the database token can write: the former unkeyed SHA-256 link. */
async function forge(db: ReturnType<typeof testDb>, f: ForgedRow) {
  const content = { chain: f.chain, segment: f.segment ?? "legacy", seq: f.seq, at: Date.now(), actorSub: "intruder", actorRole: "platform_admin", action: f.action, officeId: f.officeId, targetIds: [], outcome: "succeeded", requestId: null, details: null, keyId: null };
  const sha256 = (await entryMac(noKeys, f.prevHash, { ...content, segment: "legacy" }))!;
  const hash = f.hash ?? sha256;
  if (f.segment === undefined) {
    // An INSERT written for the former schema: no segment, no key id.
    await db.run(sql`INSERT INTO audit_log (chain, seq, at, actor_sub, actor_role, action, office_id, target_ids, outcome, prev_hash, hash) VALUES (${f.chain}, ${f.seq}, ${content.at}, 'intruder', 'platform_admin', ${f.action}, ${f.officeId}, '[]', 'succeeded', ${f.prevHash}, ${hash})`);
  } else {
    await db.run(sql`INSERT INTO audit_log (chain, segment, seq, at, actor_sub, actor_role, action, office_id, target_ids, outcome, key_id, prev_hash, hash) VALUES (${f.chain}, ${f.segment}, ${f.seq}, ${content.at}, 'intruder', 'platform_admin', ${f.action}, ${f.officeId}, '[]', 'succeeded', ${f.keyId ?? null}, ${f.prevHash}, ${hash})`);
  }
  return hash;
}

async function headOf(officeId: string) {
  const anchor = await officeStub(officeId).auditAnchor(officeId);
  if (!anchor.ok) throw new Error("no anchor");
  const open = anchor.value.segments.at(-1)!;
  return { segment: open.segment, seq: open.seq, hash: open.hash };
}

describe("GET /v1/audit/verify", () => {
  it("reports an intact chain as ok, with its recorded head and keyed entries", async () => {
    const officeId = await officeChain(3);
    const verdict = await verify(officeId);
    expect(verdict).toMatchObject({ chain: officeId, ok: true, entries: 3, segments: 1, fences: [] });
    expect(verdict.head).toEqual(await headOf(officeId));
    const rows = await testDb().select().from(auditLog).where(eq(auditLog.chain, officeId));
    for (const r of rows) expect(r).toMatchObject({ segment: verdict.head!.segment, keyId: "a1" });
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
    expect(await verify(officeId)).toMatchObject({ ok: false, firstBroken: { seq: 3, reason: "MAC does not match the entry's content" } });
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

  it("fails a row forged by SQL with a correct SHA-256 link, wherever it is put", async () => {
    const officeId = await officeChain(3);
    const db = testDb();
    const head = await headOf(officeId);
    // In the writer's segment, right after its head, linked to it as the unkeyed chain linked entries.
    await forge(db, { chain: officeId, segment: head.segment, seq: 4, officeId, action: "test.forged", prevHash: head.hash });
    let verdict = await verify(officeId);
    expect(verdict).toMatchObject({ ok: false, firstBroken: { segment: head.segment, seq: 4 } });
    expect(verdict.firstBroken!.reason).toMatch(/beyond the head its writer recorded \(3\)/);

    // Claiming the current key id with a SHA-256 value instead of its MAC: no key, no valid MAC.
    const other = await officeChain(2);
    const otherHead = await headOf(other);
    const [row2] = await db.select().from(auditLog).where(and(eq(auditLog.chain, other), eq(auditLog.seq, 2)));
    await tamper(sql`DELETE FROM audit_log WHERE chain = ${other} AND seq = 2`);
    await forge(db, { chain: other, segment: otherHead.segment, seq: 2, officeId: other, action: "test.forged", keyId: "a1", prevHash: row2!.prevHash });
    verdict = await verify(other);
    expect(verdict).toMatchObject({ ok: false, firstBroken: { seq: 2, reason: "MAC does not match the entry's content" } });

    // Through the former schema's INSERT (no segment): an unkeyed legacy segment nobody anchored.
    const third = await officeChain(1);
    await forge(db, { chain: third, seq: 1, officeId: third, action: "test.forged", prevHash: "0".repeat(64) });
    verdict = await verify(third);
    expect(verdict).toMatchObject({ ok: false, firstBroken: { segment: "legacy", reason: "unkeyed legacy entries its writer has no record of" } });
  });

  it("fences off entries beyond its head: the break is recorded, appends go on in a new segment, verify keeps reporting it", async () => {
    const officeId = await officeChain(3);
    const head = await headOf(officeId);
    await forge(testDb(), { chain: officeId, segment: head.segment, seq: 4, officeId, action: "test.forged", prevHash: head.hash });
    const alerts = vi.spyOn(console, "error");
    const append = await officeStub(officeId).audit(officeId, [{ action: "test.after", outcome: "succeeded", actorSub: "tester", actorRole: "platform_admin", officeId }]);
    // The new segment's first entry records the break; the append is the second.
    expect(append).toEqual({ ok: true, value: { seq: 2 } });
    const alert = alerts.mock.calls.map((c) => String(c[0])).find((m) => m.includes("audit-chain-break") && m.includes(officeId));
    alerts.mockRestore();
    expect(JSON.parse(alert!)).toMatchObject({ level: "error", chain: officeId, segment: head.segment, head: 3, brokenSeq: 4 });

    const verdict = await verify(officeId);
    expect(verdict).toMatchObject({ ok: false, segments: 2, firstBroken: { segment: head.segment, seq: 4 } });
    expect(verdict.fences).toEqual([expect.objectContaining({ segment: head.segment, seq: 3, reason: expect.stringMatching(/entry 4 beyond the recorded head \(3\)/) })]);
    const next = verdict.head!;
    expect(next.segment).not.toBe(head.segment);
    const rows = await testDb().select().from(auditLog).where(and(eq(auditLog.chain, officeId), eq(auditLog.segment, next.segment))).orderBy(asc(auditLog.seq));
    expect(rows.map((r) => [r.seq, r.action])).toEqual([
      [1, "audit.chain_fenced"],
      [2, "test.after"],
    ]);
    expect(rows[0]).toMatchObject({ prevHash: head.hash, outcome: "blocked", details: { fencedSegment: head.segment, recordedHead: { seq: 3, hash: head.hash }, brokenSeq: 4 } });

    // The documented recovery: the evidence exported, the forged entry removed; verify passes again.
    await tamper(sql`DELETE FROM audit_log WHERE chain = ${officeId} AND segment = ${head.segment} AND seq = 4`);
    expect(await verify(officeId)).toMatchObject({ ok: true, segments: 2, entries: 5, fences: [expect.objectContaining({ segment: head.segment })] });
  });

  it("adopts its own batch whose answer was lost (the head it recorded as pending), nothing else", async () => {
    const officeId = await officeChain(2);
    const stub = officeStub(officeId);
    // A batch sent and committed whose answer never came back: prepared (pending recorded), inserted, not committed.
    await runInDurableObject(stub, async (_instance, state) => {
      const writer = new ChainWriter(state.storage, officeId, () => auditKeyring(loadConfig(env)));
      const db = testDb();
      const { insert } = await writer.prepare(db, [{ action: "test.lost", outcome: "succeeded", actorSub: "tester", actorRole: "platform_admin", officeId }]);
      await db.batch([insert]);
    });
    expect(await stub.audit(officeId, [{ action: "test.after", outcome: "succeeded", actorSub: "tester", actorRole: "platform_admin", officeId }])).toEqual({ ok: true, value: { seq: 4 } });
    expect(await verify(officeId)).toMatchObject({ ok: true, entries: 4, segments: 1, fences: [] });
  });

  it("verifies a legacy (unkeyed) chain its writer recorded, and goes on keyed after it", async () => {
    const officeId = newId("off");
    const db = testDb();
    // Two entries written before keyed chains, and the head their writer recorded then.
    const h1 = await forge(db, { chain: officeId, seq: 1, officeId, action: "test.legacy1", prevHash: "0".repeat(64) });
    const h2 = await forge(db, { chain: officeId, seq: 2, officeId, action: "test.legacy2", prevHash: h1 });
    const stub = officeStub(officeId);
    await runInDurableObject(stub, async (_instance, state) => {
      state.storage.sql.exec("CREATE TABLE IF NOT EXISTS audit_head (chain TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL)");
      state.storage.sql.exec("INSERT INTO audit_head (chain, seq, hash) VALUES (?, 2, ?)", officeId, h2);
    });
    expect(await stub.audit(officeId, [{ action: "test.keyed", outcome: "succeeded", actorSub: "tester", actorRole: "platform_admin", officeId }])).toEqual({ ok: true, value: { seq: 1 } });
    const verdict = await verify(officeId);
    expect(verdict).toMatchObject({ ok: true, entries: 3, segments: 2, fences: [] });
    const [keyed] = await db.select().from(auditLog).where(and(eq(auditLog.chain, officeId), eq(auditLog.action, "test.keyed")));
    expect(keyed).toMatchObject({ prevHash: h2, keyId: "a1", seq: 1 });
    // A legacy entry forged past the recorded legacy head is caught.
    await forge(db, { chain: officeId, seq: 3, officeId, action: "test.forged", prevHash: h2 });
    expect(await verify(officeId)).toMatchObject({ ok: false, firstBroken: { segment: "legacy", seq: 3 } });
  });

  it("rotates AUDIT_KEY: each entry names its key; older keys verify theirs while they are configured", async () => {
    const officeId = await officeChain(2); // under a1
    const rotated = `a2:${toBase64Url(crypto.getRandomValues(new Uint8Array(32)))},${String(env.AUDIT_KEY)}`;
    // The writer deployed with the new keyring MACs new entries under a2, after the a1 ones.
    await runInDurableObject(officeStub(officeId), async (_instance, state) => {
      const writer = new ChainWriter(state.storage, officeId, () => loadAuditKeyring(rotated));
      await writer.append(testDb(), [{ action: "test.rotated", outcome: "succeeded", actorSub: "tester", actorRole: "platform_admin", officeId }]);
    });
    const rows = await testDb().select().from(auditLog).where(eq(auditLog.chain, officeId)).orderBy(asc(auditLog.seq));
    expect(rows.map((r) => r.keyId)).toEqual(["a1", "a1", "a2"]);
    const verifyWith = async (auditKey: string) => {
      const headers = bearer(await mintToken("platform_admin"));
      const res = await worker.fetch(new Request(`${base}/verify?officeId=${officeId}`, { headers }), { ...env, AUDIT_KEY: auditKey }, createExecutionContext());
      expect(res.status).toBe(200);
      return (await res.json()) as Verdict;
    };
    expect(await verifyWith(rotated)).toMatchObject({ ok: true, entries: 3 });
    // The old key removed too early: its entries no longer verify, and the verdict says why.
    expect(await verifyWith(rotated.split(",")[0]!)).toMatchObject({ ok: false, firstBroken: { seq: 1, reason: expect.stringMatching(/MAC key a1 is not configured/) } });
    // A keyring without the new key cannot verify the new entry.
    expect(await verifyWith(String(env.AUDIT_KEY))).toMatchObject({ ok: false, firstBroken: { seq: 3 } });
  });

  it("logs a MAC'd checkpoint of a chain (head, count, time)", async () => {
    const officeId = await officeChain(3);
    const logs = vi.spyOn(console, "log");
    const checkpoint = await officeStub(officeId).auditCheckpoint(officeId);
    const logged = logs.mock.calls.map((c) => String(c[0])).find((m) => m.includes("audit checkpoint") && m.includes(officeId));
    logs.mockRestore();
    expect(checkpoint.ok).toBe(true);
    const value = (checkpoint as { value: AuditCheckpoint }).value;
    expect(value).toMatchObject({ chain: officeId, seq: 3, count: 3, keyId: "a1", hash: (await headOf(officeId)).hash });
    expect(JSON.parse(logged!)).toMatchObject({ level: "info", ...value });
    const { mac, ...body } = value;
    expect(mac).toBe(await checkpointMac(await auditKeyring(loadConfig(env)), body));
    expect(await checkpointMac(await auditKeyring(loadConfig(env)), { ...body, count: 2 })).not.toBe(mac);
  });

  it("the daily run logs a checkpoint of the platform chain and of each office chain written lately", async () => {
    const officeId = await officeChain(2);
    const logs = vi.spyOn(console, "log");
    const summary = await checkpointAuditChains(testDb(), env, Date.now());
    const logged = logs.mock.calls.map((c) => String(c[0])).filter((m) => m.includes("audit checkpoint"));
    logs.mockRestore();
    expect(summary.failed).toBe(0);
    expect(summary.checkpoints).toBeGreaterThanOrEqual(2);
    const chains = logged.map((m) => (JSON.parse(m) as { chain: string }).chain);
    expect(chains).toContain("platform");
    expect(chains).toContain(officeId);
  });

  // Last in this file: it leaves a broken (fenced) segment on this runtime's platform chain.
  it("reports a wrong-hash row past the platform head, and platform operations keep working", async () => {
    const anchor = await platformStub().anchor();
    if (!anchor.ok) throw new Error("no platform anchor");
    const open = anchor.value.segments.at(-1)!;
    await forge(testDb(), { chain: "platform", segment: open.segment, seq: open.seq + 1, officeId: null, action: "test.forged", keyId: "a1", prevHash: open.hash, hash: "f".repeat(64) });
    const verdict = await verify();
    expect(verdict).toMatchObject({ ok: false, firstBroken: { segment: open.segment, seq: open.seq + 1 } });
    // Refusals and platform reads still answer (no 500), and are still recorded.
    const refused = await SELF.fetch(base);
    expect(refused.status).toBe(401);
    const plans = await SELF.fetch("https://billing.test/v1/plans", { headers: bearer(await mintToken("platform_admin")) });
    expect(plans.status).toBe(200);
    const [entry] = await testDb().select().from(auditLog).where(eq(auditLog.requestId, plans.headers.get("x-request-id")!));
    expect(entry).toMatchObject({ chain: "platform", keyId: "a1" });
    expect(entry!.segment).not.toBe(open.segment);
    const again = await verify();
    expect(again).toMatchObject({ ok: false, firstBroken: { segment: open.segment, seq: open.seq + 1 } });
    expect(again.fences.map((f) => f.segment)).toContain(open.segment);
  });
});
