import { SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { bearer, mintToken } from "../harness/auth";
import { monthlyInvoices, onboardOffice, reportEvent, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";

const api = "https://billing.test/v1";
type Check = { invoiceId: string; periodStart: string; counted: number; results: { index: number; patientKey: string; counted: boolean }[] };

async function check(officeId: string, invoiceId: string, patientIds: unknown, role: "clinical_system" | "platform_admin" | "office_admin" | "office_viewer" = "clinical_system", scope = officeId) {
  return SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}/patient-check`, {
    method: "POST",
    headers: { ...bearer(await mintToken(role, role === "platform_admin" ? [] : [scope])), "content-type": "application/json" },
    body: JSON.stringify({ patientIds }),
  });
}

/** The §5.9 example: October closed with A and C counted, D active only from November. */
async function office() {
  const officeId = await onboardOffice({ startsOn: "2026-09-01" });
  await reportEvent(officeId, "pt-check-A", "activate", "2026-09-05T12:00:00Z");
  await reportEvent(officeId, "pt-check-C", "activate", "2026-10-12T12:00:00Z");
  await reportEvent(officeId, "pt-check-C", "deactivate", "2026-10-14T12:00:00Z");
  await reportEvent(officeId, "pt-check-D", "activate", "2026-11-05T12:00:00Z");
  await runInvoicing([officeId], "2026-11-10T00:00:00Z");
  const october = (await monthlyInvoices(officeId)).find((i) => i.periodStart === "2026-10-01")!;
  return { officeId, october };
}

describe("POST /v1/offices/{officeId}/invoices/{invoiceId}/patient-check (payment-plan §5.9)", () => {
  it("answers per patient, in order, whether the invoice counted them, without echoing the ids; audited with pseudonyms only", async () => {
    const { officeId, october } = await office();
    const res = await check(officeId, october.id, ["pt-check-A", "pt-check-C", "pt-check-D", "pt-check-nobody"]);
    expect(res.status, await res.clone().text()).toBe(200);
    const text = await res.clone().text();
    expect(text).not.toContain("pt-check");
    const body = (await res.json()) as Check;
    expect(body).toMatchObject({ invoiceId: october.id, periodStart: "2026-10-01", counted: 2 });
    expect(body.results.map((r) => [r.index, r.counted])).toEqual([[0, true], [1, true], [2, false], [3, false]]);
    // The pseudonyms are the office's: the same as the activation answered.
    const a = await reportEvent(officeId, "pt-check-A", "activate", "2026-09-05T12:00:00Z");
    expect(body.results[0]!.patientKey).toBe(a.patientKey);
    // platform_admin may ask too; the November draft counts D so far.
    const november = (await monthlyInvoices(officeId)).find((i) => i.periodStart === "2026-11-01")!;
    const draft = (await (await check(officeId, november.id, ["pt-check-D", "pt-check-C"], "platform_admin")).json()) as Check;
    expect(draft.results.map((r) => r.counted)).toEqual([true, false]);
    const rows = await testDb().select().from(auditLog).where(sql`${auditLog.requestId} = ${res.headers.get("x-request-id")!}`);
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([["patient.check", "allowed"]]);
    expect(rows[0]!.details).toMatchObject({ checked: 4, counted: 2, patientKeysSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(rows)).not.toContain("pt-check");
  });

  it("refuses bad input with 400 and never echoes an id", async () => {
    const { officeId, october } = await office();
    await expectProblem(await check(officeId, october.id, []), 400, "VALIDATION_FAILED");
    await expectProblem(await check(officeId, october.id, Array.from({ length: 1001 }, (_, i) => `pt-${i}`)), 400, "VALIDATION_FAILED");
    const bad = await check(officeId, october.id, ["123-45-6789 Jane Roe"]);
    const problem = await expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(JSON.stringify(problem)).not.toMatch(/6789|Jane/);
    await expectProblem(await check(officeId, october.id, "pt-check-A"), 400, "VALIDATION_FAILED");
  });

  it("is for the clinical system and platform_admin only; another office's invoice or a non-monthly one is a 404", async () => {
    const { officeId, october } = await office();
    await expectProblem(await check(officeId, october.id, ["pt-check-A"], "office_admin"), 403, "FORBIDDEN");
    await expectProblem(await check(officeId, october.id, ["pt-check-A"], "office_viewer"), 403, "FORBIDDEN");
    const other = await onboardOffice({ startsOn: "2026-09-01" });
    // Another office's clinical system, or this office's invoice under another office's path: 404.
    await expectProblem(await check(officeId, october.id, ["pt-check-A"], "clinical_system", other), 404, "NOT_FOUND");
    await expectProblem(await check(other, october.id, ["pt-check-A"], "platform_admin"), 404, "NOT_FOUND");
    await expectProblem(await check(officeId, "inv_ffffffffffffffffffffffffffffffff", ["pt-check-A"]), 404, "NOT_FOUND");
  });
});
