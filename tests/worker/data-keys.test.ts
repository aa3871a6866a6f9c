import { createExecutionContext, env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { invoices } from "../../src/db/invoices";
import { offices } from "../../src/db/offices";
import worker from "../../src/index";
import { fieldKeyId, lookupIndex, lookupIndexes } from "../../src/security/crypto";
import { dataKeyring, encryptedColumns, indexIn, openReference, sealReference } from "../../src/security/data-keys";
import { toBase64Url } from "../../src/security/encoding";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { seedOffice, testDb } from "../harness/seed";

const officeColumn = encryptedColumns[0];
const newKey = () => `k${Date.now()}:${toBase64Url(crypto.getRandomValues(new Uint8Array(32)))}`;

describe("provider references at rest", () => {
  it("are AES-256-GCM ciphertext with a key id, bound to their row, with an HMAC lookup index", async () => {
    const ring = await dataKeyring(loadConfig(env));
    const sealed = await sealReference(ring, officeColumn, "off_a", "cus_NffrFeUfNV2Hib");
    expect(sealed.ref).not.toContain("cus_");
    expect(fieldKeyId(sealed.ref)).toBe(ring.current);
    expect(await openReference(ring, officeColumn, "off_a", sealed.ref)).toBe("cus_NffrFeUfNV2Hib");
    await expect(openReference(ring, officeColumn, "off_b", sealed.ref)).rejects.toThrow(); // moved to another row
    expect(sealed.index).toBe(await lookupIndex(ring, "stripe_customer", "cus_NffrFeUfNV2Hib"));
    expect(sealed.index).not.toContain("cus_");
    // Same plaintext, fresh IV: two encryptions differ, the index does not.
    const again = await sealReference(ring, officeColumn, "off_a", "cus_NffrFeUfNV2Hib");
    expect(again.ref).not.toBe(sealed.ref);
    expect(again.index).toBe(sealed.index);
  });
});

/** Calls the rotation endpoint as platform_admin (or `token`) with the given env and body. */
async function rotate(body: unknown, envOverride: Record<string, unknown> = env, token?: string) {
  return worker.fetch(
    new Request("https://billing.test/v1/admin/data-keys/rotate", {
      method: "POST",
      headers: { ...bearer(token ?? (await mintToken("platform_admin"))), "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
    { ...env, ...envOverride },
    createExecutionContext(),
  );
}

describe("POST /v1/admin/data-keys/rotate", () => {
  it("re-encrypts an office's references under the new key, batch by batch, keeping them readable", async () => {
    const db = testDb();
    const oldRing = await dataKeyring(loadConfig(env));
    const office = await seedOffice(db);
    const sealed = await sealReference(oldRing, officeColumn, office.id, "cus_RotateMe123");
    await db.update(offices).set({ stripeCustomerRef: sealed.ref, stripeCustomerIndex: sealed.index }).where(eq(offices.id, office.id));

    // Deploy a new first key, the old one still present.
    const rotatedEnv = { ...env, DATA_ENCRYPTION_KEY: `${newKey()},${env.DATA_ENCRYPTION_KEY}` };
    const call = async () => {
      const res = await rotate({ officeId: office.id, batchSize: 1 }, rotatedEnv);
      expect(res.status).toBe(200);
      return (await res.json()) as { currentKeyId: string; reencrypted: number; remaining: number };
    };
    const first = await call();
    expect(first).toMatchObject({ reencrypted: 1, remaining: 0 });
    expect(await call()).toMatchObject({ reencrypted: 0, remaining: 0 }); // re-runnable

    const [row] = await db.select().from(offices).where(eq(offices.id, office.id));
    expect(fieldKeyId(row!.stripeCustomerRef!)).toBe(first.currentKeyId);
    const newRing = await dataKeyring(loadConfig(rotatedEnv));
    expect(await openReference(newRing, officeColumn, office.id, row!.stripeCustomerRef!)).toBe("cus_RotateMe123");
    expect(row!.stripeCustomerIndex).toBe(sealed.index);
  });

  it("skips and reports a value it cannot decrypt, and still rotates the rest", async () => {
    const db = testDb();
    const ring = await dataKeyring(loadConfig(env));
    const office = await seedOffice(db);
    const good = await sealReference(ring, officeColumn, office.id, "cus_Good123");
    await db.update(offices).set({ stripeCustomerRef: good.ref, stripeCustomerIndex: good.index }).where(eq(offices.id, office.id));
    await db.insert(invoices).values({
      id: `inv_${crypto.randomUUID().replace(/-/g, "")}`,
      officeId: office.id,
      kind: "one_off",
      currency: "usd",
      periodStart: "2026-11-01",
      periodEnd: "2026-12-01",
      updatedAt: Date.now(),
      stripeInvoiceRef: "kgone.AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBB", // a key no longer configured
    });
    const rotatedEnv = { ...env, DATA_ENCRYPTION_KEY: `${newKey()},${env.DATA_ENCRYPTION_KEY}` };
    const res = await rotate({ officeId: office.id }, rotatedEnv);
    expect(await res.json()).toMatchObject({ reencrypted: 1, unreadable: 1, remaining: 1, nextCursor: null });
  });

  it("is for platform_admin only and validates its body", async () => {
    await expectProblem(await rotate({}, env, await mintToken("office_admin", [])), 403, "FORBIDDEN");
    await expectProblem(await rotate({ batchSize: 0 }), 400, "VALIDATION_FAILED");
    await expectProblem(await rotate({ everything: true }), 400, "VALIDATION_FAILED");
    await expectProblem(await rotate({ cursor: "bm90IGEgY3Vyc29y" }), 400, "VALIDATION_FAILED");
  });
});

describe("POST /v1/admin/data-index/rotate (DATA_INDEX_KEY rotation)", () => {
  const call = async (body: unknown, envOverride: Record<string, unknown>, token?: string) =>
    worker.fetch(
      new Request("https://billing.test/v1/admin/data-index/rotate", {
        method: "POST",
        headers: { ...bearer(token ?? (await mintToken("platform_admin"))), "content-type": "application/json" },
        body: JSON.stringify(body),
      }),
      { ...env, ...envOverride },
      createExecutionContext(),
    );
  const findOffice = async (ring: Awaited<ReturnType<typeof dataKeyring>>, customerId: string) =>
    testDb().select({ id: offices.id }).from(offices).where(indexIn(offices.stripeCustomerIndex, await lookupIndexes(ring, "stripe_customer", customerId)));

  it("re-indexes under the new key while lookups find values under either key, then under the new one alone", async () => {
    const db = testDb();
    const oldRing = await dataKeyring(loadConfig(env));
    const office = await seedOffice(db);
    const customerId = `cus_Reindex${crypto.randomUUID().slice(0, 8)}`;
    const sealed = await sealReference(oldRing, officeColumn, office.id, customerId);
    await db.update(offices).set({ stripeCustomerRef: sealed.ref, stripeCustomerIndex: sealed.index }).where(eq(offices.id, office.id));

    const rotatedEnv = { DATA_INDEX_KEY: toBase64Url(crypto.getRandomValues(new Uint8Array(32))), DATA_INDEX_KEY_PREVIOUS: env.DATA_INDEX_KEY };
    const duringRing = await dataKeyring(loadConfig({ ...env, ...rotatedEnv }));
    // Mid-rotation: the row still has its old index, and a lookup (trying both keys) finds it.
    expect(await findOffice(duringRing, customerId)).toEqual([{ id: office.id }]);

    const res = await call({ officeId: office.id }, rotatedEnv);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ examined: 1, reindexed: 1, unreadable: 0, nextCursor: null });
    expect(await (await call({ officeId: office.id }, rotatedEnv)).json()).toMatchObject({ examined: 1, reindexed: 0 }); // re-runnable

    const [row] = await db.select().from(offices).where(eq(offices.id, office.id));
    expect(row!.stripeCustomerIndex).toBe(await lookupIndex(duringRing, "stripe_customer", customerId));
    expect(row!.stripeCustomerRef).toBe(sealed.ref); // the ciphertext is untouched
    // DATA_INDEX_KEY_PREVIOUS removed: the new key alone finds it; the old key no longer does.
    const afterRing = await dataKeyring(loadConfig({ ...env, DATA_INDEX_KEY: rotatedEnv.DATA_INDEX_KEY }));
    expect(await findOffice(afterRing, customerId)).toEqual([{ id: office.id }]);
    expect(await findOffice(oldRing, customerId)).toEqual([]);
  });

  it("walks in batches with a cursor, skips and counts what it cannot decrypt, and is for platform_admin only", async () => {
    const db = testDb();
    const ring = await dataKeyring(loadConfig(env));
    const office = await seedOffice(db);
    const good = await sealReference(ring, officeColumn, office.id, "cus_Batch123");
    await db.update(offices).set({ stripeCustomerRef: good.ref, stripeCustomerIndex: good.index }).where(eq(offices.id, office.id));
    for (const ref of ["kgone.AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBB", (await sealReference(ring, encryptedColumns[1], "placeholder-row", "in_x")).ref]) {
      await db.insert(invoices).values({
        id: `inv_${crypto.randomUUID().replace(/-/g, "")}`,
        officeId: office.id,
        kind: "one_off",
        currency: "usd",
        periodStart: "2026-11-01",
        periodEnd: "2026-12-01",
        updatedAt: Date.now(),
        stripeInvoiceRef: ref, // neither decrypts for its row: a lost key, a value moved from another row
      });
    }
    const rotatedEnv = { DATA_INDEX_KEY: toBase64Url(crypto.getRandomValues(new Uint8Array(32))), DATA_INDEX_KEY_PREVIOUS: env.DATA_INDEX_KEY };
    let cursor: string | null = null;
    const totals = { examined: 0, reindexed: 0, unreadable: 0 };
    for (let round = 0; round < 10; round++) {
      const body = (await (await call({ officeId: office.id, batchSize: 1, ...(cursor ? { cursor } : {}) }, rotatedEnv)).json()) as typeof totals & { nextCursor: string | null };
      totals.examined += body.examined;
      totals.reindexed += body.reindexed;
      totals.unreadable += body.unreadable;
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    expect(cursor).toBeNull();
    expect(totals).toEqual({ examined: 3, reindexed: 1, unreadable: 2 });

    await expectProblem(await call({}, rotatedEnv, await mintToken("office_admin", [])), 403, "FORBIDDEN");
    await expectProblem(await call({ cursor: "bm90IGEgY3Vyc29y" }, rotatedEnv), 400, "VALIDATION_FAILED");
    await expectProblem(await call({ batchSize: 501 }, rotatedEnv), 400, "VALIDATION_FAILED");
    expect(() => loadConfig({ ...env, DATA_INDEX_KEY_PREVIOUS: env.DATA_INDEX_KEY })).toThrow(/DATA_INDEX_KEY_PREVIOUS/);
  });
});
