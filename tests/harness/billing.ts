import { SELF } from "cloudflare:test";
import { asc, sql } from "drizzle-orm";
import { expect } from "vitest";
import { invoiceLines, invoices } from "../../src/db/invoices";
import type { planVersions } from "../../src/db/plans";
import { bearer, mintToken } from "./auth";
import { seedPlan, testDb } from "./seed";

const api = "https://billing.test/v1";

/** Onboards an office through the API on a fresh plan; returns its id. */
export async function onboardOffice(opts: { plan?: Partial<typeof planVersions.$inferInsert>; timeZone?: string; anchor?: number; startsOn: string; legalName?: string; billingEmail?: string }) {
  const { planId } = await seedPlan(testDb(), { setupFee: 0, ...opts.plan });
  const res = await SELF.fetch(`${api}/offices`, {
    method: "POST",
    headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
    body: JSON.stringify({
      legalName: opts.legalName ?? "Harbor Pediatrics PC",
      billingEmail: opts.billingEmail ?? "billing@harbor.example",
      timeZone: opts.timeZone ?? "America/New_York",
      billingAnchorDay: opts.anchor ?? 1,
      planId,
      startsOn: opts.startsOn,
    }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

export async function reportEvent(officeId: string, patientId: string, kind: "activate" | "deactivate", occurredAt: string) {
  const res = await SELF.fetch(`${api}/offices/${officeId}/patients/${patientId}/${kind}`, {
    method: "POST",
    headers: { ...bearer(await mintToken("clinical_system", [officeId])), "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
    body: JSON.stringify({ occurredAt }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json() as Promise<{ applied: boolean; active: boolean; patientKey: string }>;
}

/** Runs the invoicing job for these offices at an instant (the admin endpoint). */
export async function runInvoicing(officeIds: string[], at: string | { date: string }, dryRun = false) {
  const res = await SELF.fetch(`${api}/admin/invoicing-runs`, {
    method: "POST",
    headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
    body: JSON.stringify({ ...(typeof at === "string" ? { at } : at), dryRun, officeIds }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json() as Promise<{ offices: { officeId: string; invoices: { invoiceId: string; periodStart: string; total: number }[] }[] }>;
}

/** An office's monthly invoices with their lines, oldest period first. */
export async function monthlyInvoices(officeId: string) {
  const db = testDb();
  const rows = await db.select().from(invoices).where(sql`${invoices.officeId} = ${officeId} AND ${invoices.kind} = 'monthly'`).orderBy(asc(invoices.periodStart));
  const lines = await db
    .select()
    .from(invoiceLines)
    .where(sql`${invoiceLines.invoiceId} IN (SELECT id FROM invoices WHERE office_id = ${officeId})`)
    .orderBy(asc(invoiceLines.position), asc(invoiceLines.rankFrom));
  return rows.map((inv) => ({ ...inv, lines: lines.filter((l) => l.invoiceId === inv.id) }));
}

/**
 * What an invoice bills for patients: a draft's running line as it is; a finalized invoice's tier
 * lines summed (amount) with its billable-patient count (quantity), which counts the allowance.
 */
export const patientsLine = (inv: { status: string; billablePatients: number; lines: { kind: string; quantity: number; amount: number; description: string }[] }) => {
  const lines = inv.lines.filter((l) => l.kind === "patients");
  if (inv.status === "draft") return lines[0]!;
  return { quantity: inv.billablePatients, amount: lines.reduce((sum, l) => sum + l.amount, 0), tierLines: lines.length };
};
export const baseLine = (inv: { lines: { kind: string; amount: number }[] }) => inv.lines.find((l) => l.kind === "base_fee");

