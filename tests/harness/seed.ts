import { env } from "cloudflare:test";
import { loadConfig } from "../../src/config";
import { createDatabase, type Database } from "../../src/db/client";
import { offices } from "../../src/db/offices";
import { plans, planVersions, type PriceTier } from "../../src/db/plans";
import { newId } from "../../src/security/request-id";
import { startOfLocalDay } from "../../src/billing/calendar";

/** A drizzle database on the test database the Worker itself uses (the real local libSQL server). */
export function testDb(): Database {
  return createDatabase(loadConfig(env));
}

export const defaultTiers: PriceTier[] = [
  { upTo: 50, unitAmount: 800 },
  { upTo: 200, unitAmount: 600 },
  { upTo: null, unitAmount: 400 },
];

/** A fresh plan with one version; ids are random so every test owns its tenants. */
export async function seedPlan(db: Database, overrides: Partial<typeof planVersions.$inferInsert> = {}) {
  const planId = newId("plan");
  const versionId = newId("planv");
  await db.batch([
    db.insert(plans).values({ id: planId, code: `code_${planId}`, name: "Standard" }),
    db.insert(planVersions).values({
      id: versionId,
      planId,
      version: 1,
      currency: "usd",
      baseFee: 4900,
      tiers: defaultTiers,
      ...overrides,
    }),
  ]);
  return { planId, versionId };
}

/** A fresh office on a fresh plan. */
export async function seedOffice(db: Database, overrides: Partial<typeof offices.$inferInsert> = {}) {
  const { versionId } = await seedPlan(db);
  const id = newId("off");
  const row: typeof offices.$inferInsert = {
    id,
    legalName: "Lakeside Family Practice LLC",
    billingEmail: "billing@lakeside.example",
    timeZone: "America/New_York",
    billingAnchorDay: 1,
    planVersionId: versionId,
    status: "active" as const,
    cycleStart: "2026-11-01",
    cycleEnd: "2026-12-01",
    updatedAt: Date.now(),
    ...overrides,
  };
  row.cycleEndAt ??= startOfLocalDay(row.cycleEnd, row.timeZone);
  await db.insert(offices).values(row);
  return row;
}
