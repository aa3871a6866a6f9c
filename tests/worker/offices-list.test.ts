import { SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { planVersions } from "../../src/db/plans";
import { newId } from "../../src/security/request-id";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { seedOffice, seedPlan, testDb } from "../harness/seed";

type Page = { data: { id: string; legalName: string; status: string; timeZone: string; planVersionId: string; createdAt: string }[]; nextCursor: string | null };

async function list(query: string, role: "platform_admin" | "office_admin" = "platform_admin") {
  return SELF.fetch(`https://billing.test/v1/offices?${query}`, { headers: bearer(await mintToken(role)) });
}

/** One plan with two versions and six offices on it (fresh ids: this test's tenants only). */
async function seedFleet() {
  const db = testDb();
  const { planId, versionId } = await seedPlan(db);
  const v2 = newId("planv");
  await db.insert(planVersions).values({ id: v2, planId, version: 2, currency: "usd", baseFee: 5900, tiers: [{ upTo: null, unitAmount: 500 }] });
  const t0 = Date.UTC(2026, 10, 1);
  const specs = [
    { legalName: "Lakeside Family Practice LLC", status: "active", timeZone: "America/New_York", planVersionId: versionId },
    { legalName: "lakeview pediatrics", status: "past_due", timeZone: "America/Chicago", planVersionId: versionId },
    { legalName: "Harbor Clinic", status: "active", timeZone: "America/New_York", planVersionId: v2 },
    { legalName: "100%_Care Partners", status: "trialing", timeZone: "Europe/Berlin", planVersionId: v2 },
    { legalName: "100 Oaks Medical", status: "suspended", timeZone: "America/New_York", planVersionId: versionId },
    { legalName: "Zephyr Health", status: "canceled", timeZone: "America/New_York", planVersionId: versionId },
  ] as const;
  const rows = [];
  for (const [i, s] of specs.entries()) rows.push(await seedOffice(db, { ...s, createdAt: t0 + i * 60_000 }));
  return { planId, versionId, v2, rows };
}

/** Every page of a listing, following `nextCursor`. */
async function all(query: string) {
  const out: Page["data"] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 20; pages++) {
    const res = await list(`${query}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(res.status, await res.clone().text()).toBe(200);
    const page = (await res.json()) as Page;
    expect(page.data.length).toBeLessThanOrEqual(2);
    out.push(...page.data);
    cursor = page.nextCursor;
    if (!cursor) return out;
  }
  throw new Error("the listing did not end");
}

describe("GET /v1/offices (platform_admin)", () => {
  it("lists a plan's offices newest first by default, every office once across pages", async () => {
    const { planId, rows } = await seedFleet();
    const names = (await all(`planId=${planId}`)).map((o) => o.legalName);
    expect(names).toEqual(rows.map((r) => r.legalName).reverse());
  });

  it("sorts by legal name ignoring ASCII case, both ways, paging stable", async () => {
    const { planId } = await seedFleet();
    const asc = (await all(`planId=${planId}&sort=legalName`)).map((o) => o.legalName);
    expect(asc).toEqual(["100 Oaks Medical", "100%_Care Partners", "Harbor Clinic", "Lakeside Family Practice LLC", "lakeview pediatrics", "Zephyr Health"]);
    const desc = (await all(`planId=${planId}&sort=legalName&order=desc`)).map((o) => o.legalName);
    expect(desc).toEqual([...asc].reverse());
    const oldest = (await all(`planId=${planId}&order=asc`)).map((o) => o.legalName);
    expect(oldest[0]).toBe("Lakeside Family Practice LLC");
  });

  it("filters by status, plan version and time zone, combined", async () => {
    const { planId, versionId, v2 } = await seedFleet();
    const names = async (q: string) => (await all(`planId=${planId}&sort=legalName&${q}`)).map((o) => o.legalName);
    expect(await names("status=active")).toEqual(["Harbor Clinic", "Lakeside Family Practice LLC"]);
    expect(await names(`planVersionId=${v2}`)).toEqual(["100%_Care Partners", "Harbor Clinic"]);
    expect(await names(`planVersionId=${versionId}&timeZone=America/New_York`)).toEqual(["100 Oaks Medical", "Lakeside Family Practice LLC", "Zephyr Health"]);
    expect(await names("status=canceled&timeZone=Europe/Berlin")).toEqual([]);
    // A plan filter alone never shows another plan's offices.
    const other = await seedPlan(testDb());
    expect((await all(`planId=${other.planId}`)).length).toBe(0);
  });

  it("searches by legal-name prefix: ASCII case-insensitive, % and _ taken literally", async () => {
    const { planId } = await seedFleet();
    const names = async (prefix: string) => (await all(`planId=${planId}&sort=legalName&legalNamePrefix=${encodeURIComponent(prefix)}`)).map((o) => o.legalName);
    expect(await names("lake")).toEqual(["Lakeside Family Practice LLC", "lakeview pediatrics"]);
    expect(await names("LAKES")).toEqual(["Lakeside Family Practice LLC"]);
    expect(await names("100%")).toEqual(["100%_Care Partners"]);
    expect(await names("100_")).toEqual([]);
    expect(await names("100 O")).toEqual(["100 Oaks Medical"]);
    // Like every text input, the prefix is trimmed.
    expect(await names("100 ")).toEqual(["100 Oaks Medical", "100%_Care Partners"]);
    expect(await names("Nobody")).toEqual([]);
  });

  it("is audited once per call, without the search text", async () => {
    const { planId } = await seedFleet();
    const res = await list(`planId=${planId}&legalNamePrefix=Harbor`);
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id")!;
    const rows = await testDb().select().from(auditLog).where(sql`${auditLog.requestId} = ${requestId}`);
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([["office.list", "allowed"]]);
    expect(JSON.stringify(rows[0]!.details)).not.toContain("Harbor");
  });

  it("refuses bad input with 400 problem+json", async () => {
    const { planId } = await seedFleet();
    await expectProblem(await list("status=frozen"), 400, "VALIDATION_FAILED");
    await expectProblem(await list("planId=nope"), 400, "VALIDATION_FAILED");
    await expectProblem(await list("timeZone=Mars/Olympus"), 400, "VALIDATION_FAILED");
    await expectProblem(await list("limit=0"), 400, "VALIDATION_FAILED");
    await expectProblem(await list("limit=201"), 400, "VALIDATION_FAILED");
    await expectProblem(await list("sort=status"), 400, "VALIDATION_FAILED");
    await expectProblem(await list("legalNamePrefix=%E2%80%AEevil"), 400, "VALIDATION_FAILED");
    await expectProblem(await list("officeName=x"), 400, "VALIDATION_FAILED");
    await expectProblem(await list("cursor=bm90LWEtY3Vyc29y"), 400, "VALIDATION_FAILED");
    // A cursor is bound to its sort and order.
    const first = (await (await list(`planId=${planId}&limit=2`)).json()) as Page;
    expect(first.nextCursor).toBeTruthy();
    await expectProblem(await list(`planId=${planId}&limit=2&sort=legalName&cursor=${encodeURIComponent(first.nextCursor!)}`), 400, "VALIDATION_FAILED");
    await expectProblem(await list(`planId=${planId}&limit=2&order=asc&cursor=${encodeURIComponent(first.nextCursor!)}`), 400, "VALIDATION_FAILED");
  });

  it("is for platform_admin only", async () => {
    const { planId } = await seedFleet();
    await expectProblem(await list(`planId=${planId}`, "office_admin"), 403, "FORBIDDEN");
    await expectProblem(await SELF.fetch(`https://billing.test/v1/offices?planId=${planId}`), 401, "UNAUTHORIZED");
  });
});
