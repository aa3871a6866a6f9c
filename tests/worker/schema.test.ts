import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { invoices } from "../../src/db/invoices";
import { newId } from "../../src/security/request-id";
import { rejection } from "../harness/db-error";
import { seedOffice, testDb } from "../harness/seed";

const expectedTables = [
  "plans",
  "plan_versions",
  "offices",
  "patients",
  "patient_events",
  "invoices",
  "invoice_lines",
  "invoice_patients",
  "audit_log",
  "stripe_requests",
  "webhook_events",
  "job_runs",
];

describe("migrations applied by the harness", () => {
  it("created every table of the billing model", async () => {
    const rows = await testDb().all<{ name: string }>(sql`SELECT name FROM sqlite_master WHERE type = 'table'`);
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(expectedTables));
  });

  it("makes a second monthly invoice for the same office and cycle impossible", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    const invoice = () => ({
      id: newId("inv"),
      officeId: office.id,
      kind: "monthly" as const,
      currency: "usd",
      periodStart: "2026-11-01",
      periodEnd: "2026-12-01",
      updatedAt: Date.now(),
    });
    await db.insert(invoices).values(invoice());
    expect(await rejection(db.insert(invoices).values(invoice()))).toMatch(/UNIQUE constraint failed/);
    // One-off invoices are not limited per period.
    await db.insert(invoices).values({ ...invoice(), kind: "one_off" });
    await db.insert(invoices).values({ ...invoice(), kind: "one_off" });
  });

  it("keeps the audit log append-only", async () => {
    const db = testDb();
    const chain = newId("chain");
    await db.insert(auditLog).values({
      chain,
      seq: 1,
      at: Date.now(),
      actorSub: "system",
      actorRole: "system",
      action: "test.append",
      targetIds: [],
      outcome: "succeeded",
      prevHash: "0".repeat(64),
      hash: "f".repeat(64),
    });
    expect(await rejection(db.run(sql`UPDATE audit_log SET action = 'changed' WHERE chain = ${chain}`))).toMatch(/append-only/);
    expect(await rejection(db.run(sql`DELETE FROM audit_log WHERE chain = ${chain}`))).toMatch(/append-only/);
  });

  it("rejects money that is not a non-negative integer amount where the schema says so", async () => {
    const db = testDb();
    const office = await seedOffice(db);
    expect(await rejection(
      db.insert(invoices).values({
        id: newId("inv"),
        officeId: office.id,
        kind: "one_off",
        currency: "usd",
        periodStart: "2026-11-01",
        periodEnd: "2026-12-01",
        amountPaid: 100,
        amountRefunded: 200,
        updatedAt: Date.now(),
      }),
    )).toMatch(/CHECK constraint failed/);
  });
});
