import { SELF } from "cloudflare:test";
import { asc, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { tieredAmount } from "../../src/billing/pricing";
import { tieredAmountSql } from "../../src/db/billing-sql";
import { invoiceLines, invoices } from "../../src/db/invoices";
import { offices } from "../../src/db/offices";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { seedPlan, testDb } from "../harness/seed";

async function onboard(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return SELF.fetch("https://billing.test/v1/offices", {
    method: "POST",
    headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json", ...headers },
    body: JSON.stringify({ legalName: "Lakeside Family Practice LLC", billingEmail: "billing@lakeside.example", timeZone: "America/New_York", billingAnchorDay: 1, ...body }),
  });
}

async function invoicesOf(officeId: string) {
  const db = testDb();
  const rows = await db.select().from(invoices).where(eq(invoices.officeId, officeId)).orderBy(asc(invoices.kind));
  const lines = await db.select().from(invoiceLines).where(sql`${invoiceLines.invoiceId} IN (SELECT id FROM invoices WHERE office_id = ${officeId})`).orderBy(asc(invoiceLines.position));
  return rows.map((inv) => ({ ...inv, lines: lines.filter((l) => l.invoiceId === inv.id) }));
}

describe("POST /v1/offices (onboarding)", () => {
  it("with an Idempotency-Key, a retry answers the office the first request made, once, and another body with the key is a 409", async () => {
    const { planId } = await seedPlan(testDb(), { baseFee: 4900, setupFee: 25000 });
    const key = { "idempotency-key": `onboard-${crypto.randomUUID()}` };
    const first = await onboard({ planId, startsOn: "2026-11-20" }, key);
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const office = (await first.json()) as { id: string };
    const retries = await Promise.all([onboard({ planId, startsOn: "2026-11-20" }, key), onboard({ planId, startsOn: "2026-11-20" }, key)]);
    for (const retry of retries) {
      expect(retry.status).toBe(201);
      expect(retry.headers.get("idempotent-replayed")).toBe("true");
      expect(((await retry.json()) as { id: string }).id).toBe(office.id);
    }
    // One office, one draft and one setup-fee invoice.
    expect((await invoicesOf(office.id)).map((i) => i.kind).sort()).toEqual(["monthly", "setup"]);
    await expectProblem(await onboard({ planId, startsOn: "2026-11-21" }, key), 409, "CONFLICT");
    // Without a key, the same body onboards another office.
    const other = (await (await onboard({ planId, startsOn: "2026-11-20" })).json()) as { id: string };
    expect(other.id).not.toBe(office.id);
  });


  it("opens the first cycle with its draft (base fee prorated from the start day) and a finalized setup-fee invoice", async () => {
    const { planId } = await seedPlan(testDb(), { baseFee: 4900, setupFee: 25000 });
    const res = await onboard({ planId, startsOn: "2026-11-20" });
    expect(res.status).toBe(201);
    const office = (await res.json()) as { id: string; status: string; currentCycle: { start: string; end: string } };
    expect(office).toMatchObject({ status: "active", currentCycle: { start: "2026-11-01", end: "2026-12-01" } });
    const [row] = await testDb().select().from(offices).where(eq(offices.id, office.id));
    expect(new Date(row!.cycleEndAt).toISOString()).toBe("2026-12-01T05:00:00.000Z"); // local midnight, EST

    const [monthly, setup] = await invoicesOf(office.id);
    expect(monthly).toMatchObject({ kind: "monthly", status: "draft", periodStart: "2026-11-01", periodEnd: "2026-12-01", inTrial: false, total: 1797 });
    // 11 of November's 30 days: 4900 × 11 / 30 = 1796.67 → 1797 (half up).
    // The prorated fee line's period is the days it bills: from the first day, not the cycle's start.
    expect(monthly!.lines.map((l) => [l.kind, l.description, l.quantity, l.amount, l.periodStart, l.periodEnd])).toEqual([
      ["patients", "Active patients — Nov 2026", 0, 0, "2026-11-01", "2026-12-01"],
      ["base_fee", "Platform fee — Nov 2026", 1, 1797, "2026-11-20", "2026-12-01"],
    ]);
    expect(setup).toMatchObject({ kind: "setup", status: "open", total: 25000 });
    expect(setup!.finalizedAt).toBeGreaterThan(0);
    expect(setup!.lines.map((l) => [l.description, l.amount])).toEqual([["Setup fee", 25000]]);
  });

  it("starts a trial: a cycle wholly in it is invoiced at 0, and no setup invoice without a setup fee", async () => {
    const { planId } = await seedPlan(testDb(), { baseFee: 4900, setupFee: 0, trialDays: 30 });
    const office = (await (await onboard({ planId, startsOn: "2026-11-01" })).json()) as { id: string; status: string };
    expect(office.status).toBe("trialing");
    const all = await invoicesOf(office.id);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ kind: "monthly", inTrial: true, total: 0 });
  });

  it("bills a trial that ends inside the first cycle from its last day: base fee prorated", async () => {
    const { planId } = await seedPlan(testDb(), { baseFee: 3000, setupFee: 0, trialDays: 10 });
    const office = (await (await onboard({ planId, startsOn: "2026-11-01" })).json()) as { id: string };
    const [monthly] = await invoicesOf(office.id);
    // Trial Nov 1–10; billed Nov 11–30: 20 of 30 days → 2000.
    expect(monthly).toMatchObject({ inTrial: false, total: 2000 });
  });

  it("omits the base-fee line when the plan has none", async () => {
    const { planId } = await seedPlan(testDb(), { baseFee: 0, setupFee: 0 });
    const office = (await (await onboard({ planId })).json()) as { id: string };
    const [monthly] = await invoicesOf(office.id);
    expect(monthly!.lines.map((l) => l.kind)).toEqual(["patients"]);
  });

  it("refuses a retired or unknown plan, a bad time zone, anchor day or e-mail", async () => {
    const db = testDb();
    const { planId } = await seedPlan(db);
    await db.run(sql`UPDATE plans SET status = 'retired' WHERE id = ${planId}`);
    await expectProblem(await onboard({ planId }), 409, "CONFLICT");
    await expectProblem(await onboard({ planId: "plan_00000000000000000000000000000000" }), 404, "NOT_FOUND");
    const active = (await seedPlan(db)).planId;
    await expectProblem(await onboard({ planId: active, timeZone: "Mars/Olympus" }), 400, "VALIDATION_FAILED");
    await expectProblem(await onboard({ planId: active, billingAnchorDay: 32 }), 400, "VALIDATION_FAILED");
    await expectProblem(await onboard({ planId: active, billingEmail: "not-an-email" }), 400, "VALIDATION_FAILED");
    await expectProblem(await onboard({ planId: active, startsOn: "2026-02-30" }), 400, "VALIDATION_FAILED");
    await expectProblem(await onboard({ planId: active, startsOn: "9999-12-15" }), 400, "VALIDATION_FAILED");
    await expectProblem(await onboard({ planId: active, startsOn: "0099-01-01" }), 400, "VALIDATION_FAILED");
  });
});

describe("POST /v1/offices refuses office text the PHI guard would block at the outbox", () => {
  // Each value, and the field and kind of identifier the refusal must name (never the value).
  const hostile: { name: string; body: Record<string, string>; field: string; kind: RegExp; secret: string }[] = [
    { name: "an SSN-like legal name", body: { legalName: "Clinic 123-45-6789" }, field: "legalName", kind: /Social Security number/, secret: "6789" },
    { name: "an MRN-like legal name", body: { legalName: "Lakeside MRN A1234567" }, field: "legalName", kind: /record, account or member number/, secret: "A1234567" },
    { name: "full-width digits in the legal name", body: { legalName: "Clinic １２３-４５-６７８９" }, field: "legalName", kind: /Social Security number/, secret: "６７８９" },
    { name: "spaced digits in the legal name", body: { legalName: "Clinic 123 45 6789" }, field: "legalName", kind: /Social Security number/, secret: "6789" },
    { name: "an en-dashed phone number in the legal name", body: { legalName: "Dr Roe call 555\u2013201\u20138899" }, field: "legalName", kind: /phone/, secret: "8899" },
    { name: "an SSN as the billing e-mail's local part", body: { billingEmail: "123-45-6789@x.test" }, field: "billingEmail", kind: /Social Security number/, secret: "6789" },
  ];
  for (const h of hostile) {
    it(`refuses ${h.name}: 400 OFFICE_TEXT_LOOKS_LIKE_PHI naming the field and kind, the value never echoed, nothing stored`, async () => {
      const { planId, versionId } = await seedPlan(testDb(), {});
      const body = Object.fromEntries(Object.entries(h.body).map(([k, v]) => [k, JSON.parse(`"${v}"`) as string]));
      const res = await onboard({ planId, ...body });
      const problem = await expectProblem(res, 400, "OFFICE_TEXT_LOOKS_LIKE_PHI");
      expect(problem.detail).toContain(h.field);
      expect(problem.detail).toMatch(h.kind);
      expect(problem.errors).toEqual(expect.arrayContaining([{ path: h.field, message: expect.stringMatching(h.kind) }]));
      expect(JSON.stringify(problem)).not.toContain(h.secret);
      // Nothing was stored: no office on this fresh plan.
      expect(await testDb().select().from(offices).where(eq(offices.planVersionId, versionId))).toEqual([]);
    });
  }

  it("accepts a plain office name with a small number and a plain billing e-mail", async () => {
    const { planId } = await seedPlan(testDb(), {});
    const res = await onboard({ planId, legalName: "Smith Family Clinic 2", billingEmail: "billing@smith-family.example" });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await res.json()).toMatchObject({ legalName: "Smith Family Clinic 2", billingEmail: "billing@smith-family.example" });
  });
});

describe("the database prices tiers exactly as the rules do", () => {
  it("agrees with tieredAmount for every count around every boundary, with and without an allowance", async () => {
    const db = testDb();
    const tiers = [
      { upTo: 50, unitAmount: 800 },
      { upTo: 200, unitAmount: 600 },
      { upTo: null, unitAmount: 400 },
    ];
    for (const included of [0, 10, 55]) {
      const { versionId } = await seedPlan(db, { tiers, includedPatients: included });
      const counts = [0, 1, 9, 10, 11, 49, 50, 51, 55, 56, 199, 200, 201, 1000];
      const rows = await db.batch(
        counts.map((n) => db.all<{ amount: number }>(sql`SELECT ${tieredAmountSql(sql`${n}`, sql`${versionId}`)} AS amount`)) as never,
      );
      (rows as unknown as { amount: number }[][]).forEach((r, i) => {
        expect(r[0]!.amount, `${counts[i]} patients, ${included} included`).toBe(tieredAmount(counts[i]!, tiers, included).amount);
      });
    }
  });
});
