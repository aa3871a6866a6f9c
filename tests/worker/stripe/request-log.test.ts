import { env, runInDurableObject } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { stripeRequests } from "../../../src/db/stripe-requests";
import { BufferedRequestLog } from "../../../src/office/stripe-request-log";
import { sha256Hex } from "../../../src/security/crypto";
import { newId } from "../../../src/security/request-id";
import type { StripeRequestRow } from "../../../src/stripe/request-log";
import { onboardOffice } from "../../harness/billing";
import { testDb } from "../../harness/seed";
import { clearFaultRule, emulatorLog, faultRule, invoiceRows, letters, stripeLog, syncStripe } from "../../harness/stripe";

/**
 * Every request the isolate sends to the libSQL server while `fn` runs (the office objects run in
 * this isolate too): the pipeline bodies, as sent.
 */
async function databaseRequests<T>(fn: () => Promise<T>): Promise<{ result: T; bodies: string[] }> {
  const dbOrigin = new URL(env.TURSO_DATABASE_URL!).origin;
  const realFetch = globalThis.fetch;
  const bodies: string[] = [];
  globalThis.fetch = (async (input: Request | string | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    if (new URL(req.url).origin === dbOrigin) bodies.push(await req.clone().text());
    return realFetch(req);
  }) as typeof fetch;
  try {
    return { result: await fn(), bodies };
  } finally {
    globalThis.fetch = realFetch;
  }
}

const insertsLog = (body: string) => /insert into \\"stripe_requests\\"/i.test(body);

describe("the Stripe request log of an office's outbox", () => {
  it("is written in the outbox's own commits — no round trip of its own — with each call's row as before", async () => {
    const legalName = `Counting ${letters()} Clinic LLC`;
    const { result: officeId, bodies } = await databaseRequests(async () => {
      const id = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 25_000 }, legalName });
      await syncStripe(id); // after the alarm's run, if it started first
      return id;
    });
    const setup = (await invoiceRows(officeId)).find((i) => i.kind === "setup")!;
    expect(setup.stripeState).toBe("finalized");
    const log = await stripeLog(officeId);
    expect(log.map((r) => [r.operation, r.status, r.method, r.idempotencyKey, r.httpStatus, r.requestId])).toEqual([
      ["customer", "succeeded", "POST", `customer_${officeId}`, 200, `outbox:push:${setup.id}`],
      ["invoice", "succeeded", "POST", `invoice_${setup.id}_create`, 200, `outbox:push:${setup.id}`],
      ["addLines", "succeeded", "POST", `invoice_${setup.id}_lines`, 200, `outbox:push:${setup.id}`],
      ["finalize", "succeeded", "POST", `invoice_${setup.id}_finalize`, 200, `outbox:push:${setup.id}`],
    ]);
    // The same content as the request that crossed: its path, its body's SHA-256, Stripe's id.
    const sent = await emulatorLog();
    for (const row of log) {
      const request = sent.find((e) => e.idempotencyKey === row.idempotencyKey && e.status === 200)!;
      expect(row.path).toBe(request.path);
      expect(row.bodySha256).toBe(await sha256Hex(request.body));
      expect(row.stripeIds).toHaveLength(1);
      expect(row.finishedAt).toBeTypeOf("number");
    }
    expect(log.map((r) => r.createdAt)).toEqual([...log.map((r) => r.createdAt)].sort((a, b) => a - b));
    // Where they were written: only in batches that also record the outbox's change (the customer
    // on the office, the draft and the push on the invoice) — three commits for four rows.
    const mine = bodies.filter((b) => insertsLog(b) && b.includes(officeId));
    expect(mine).toHaveLength(3);
    for (const b of mine) expect(b).toMatch(/update \\"(offices|invoices)\\" set/i);
    expect(mine.filter((b) => /update \\"invoices\\" set stripe_state = 'finalized'/i.test(b.replace(/\\n\s*/g, " ")))).toHaveLength(1);
    // The creates' look-up of their keys' first use is read with the outbox's work (one batch), not on its own.
    const firstUseReads = bodies.filter((b) => /min\((\\"stripe_requests\\"\.)?\\"finished_at\\"\)/i.test(b) && b.includes(officeId));
    expect(firstUseReads.length).toBeGreaterThan(0);
    for (const b of firstUseReads) expect(b).toMatch(/from \\"webhook_events\\"/i);
  });

  it("writes the rows of calls that led to no commit (a retryable failure) when the run ends", async () => {
    const token = letters();
    const legalName = `Failing ${token} Clinic LLC`;
    await faultRule(token, ["500"], 3);
    try {
      const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 25_000 }, legalName });
      const report = await syncStripe(officeId);
      expect(report.failed).toEqual([]);
      const log = await stripeLog(officeId);
      // Three attempts of the customer, each answered 500 (the gateway's attempts), then the retry is the outbox's.
      expect(log.slice(0, 3).map((r) => [r.operation, r.status, r.httpStatus])).toEqual([
        ["customer", "failed", 500],
        ["customer", "failed", 500],
        ["customer", "failed", 500],
      ]);
      const pending = await runInDurableObject(env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId)), (_o, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM stripe_request_pending").toArray()[0]!.n);
      expect(pending).toBe(0);
    } finally {
      await clearFaultRule(token);
    }
  });

  it("keeps a row in the object's storage until a commit writes it: across a restart, once only", async () => {
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(`log-${newId("off")}`));
    const officeId = newId("off");
    const key = `customer_${officeId}`;
    const row: StripeRequestRow = {
      id: newId("sreq"),
      officeId,
      operation: "customer",
      method: "POST",
      path: "/v1/customers",
      idempotencyKey: key,
      bodySha256: await sha256Hex("name=x"),
      status: "succeeded",
      httpStatus: 200,
      stripeIds: ["cus_kept"],
      errorCode: null,
      requestId: "outbox:test",
      finishedAt: 1_700_000_000_000,
      createdAt: Date.now(),
    };
    await runInDurableObject(stub, async (_o, state) => {
      const first = new BufferedRequestLog(state.storage, testDb());
      first.record(row);
      // The process ends before any commit: a new instance on the same storage still has the row,
      // and the key's first use is known from it (a create past 24 hours looks its object up).
      const again = new BufferedRequestLog(state.storage, testDb());
      expect(again.pending()).toBe(1);
      expect(await again.firstUse(key)).toBe(row.finishedAt);
      const { statements, ids } = again.take();
      expect(ids).toEqual([row.id]);
      await testDb().batch(statements as never);
      // Committed, but the object ended before forgetting it: the next commit writes it again, which is nothing.
      await testDb().batch(again.take().statements as never);
      again.forget(ids);
      expect(again.pending()).toBe(0);
      expect(again.take().statements).toEqual([]);
      expect(await again.firstUse(key)).toBe(row.finishedAt);
    });
    const stored = await testDb().select().from(stripeRequests).where(eq(stripeRequests.officeId, officeId));
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: row.id, idempotencyKey: key, stripeIds: ["cus_kept"], httpStatus: 200, bodySha256: row.bodySha256, createdAt: row.createdAt });
  });
});
