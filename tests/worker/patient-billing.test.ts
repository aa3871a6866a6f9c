import { SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { bearer, mintToken } from "../harness/auth";
import { monthlyInvoices, onboardOffice, reportEvent, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";

const api = "https://billing.test/v1";
type Trace = {
  patientKey: string;
  state: { known: boolean; active: boolean; since: string | null };
  events: { id: string; kind: string; occurredAt: string; recordedAt: string; applied: boolean }[];
  eventsTruncated: boolean;
  invoices: { invoiceId: string; kind: string; status: string; periodStart: string; periodEnd: string; cycleClosed: boolean }[];
  invoicesTruncated: boolean;
};

async function trace(officeId: string, body: unknown, role: "clinical_system" | "platform_admin" | "office_admin" | "office_viewer" = "clinical_system", scope = officeId, contentType = "application/json") {
  return SELF.fetch(`${api}/offices/${officeId}/patient-billing`, {
    method: "POST",
    headers: { ...bearer(await mintToken(role, role === "platform_admin" ? [] : [scope])), "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The §5.9 example: A active from September, C active two days of October; closed through October. */
async function office() {
  const officeId = await onboardOffice({ startsOn: "2026-09-01" });
  await reportEvent(officeId, "pt-trace-A", "activate", "2026-09-05T12:00:00Z");
  await reportEvent(officeId, "pt-trace-C", "activate", "2026-10-12T12:00:00Z");
  await reportEvent(officeId, "pt-trace-C", "deactivate", "2026-10-14T12:00:00Z");
  await runInvoicing([officeId], "2026-11-10T00:00:00Z");
  return { officeId, invoices: await monthlyInvoices(officeId) };
}

describe("POST /v1/offices/{officeId}/patient-billing (payment-plan §5.9)", () => {
  it("answers the patient's state, events and every cycle that counted them, without the raw id; audited with the pseudonym only", async () => {
    const { officeId, invoices } = await office();
    const res = await trace(officeId, { patientId: "pt-trace-C" });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.clone().text()).not.toContain("pt-trace");
    const body = (await res.json()) as Trace;
    const c = await reportEvent(officeId, "pt-trace-C", "deactivate", "2026-10-14T12:00:00Z"); // a replay: the same pseudonym
    expect(body.patientKey).toBe(c.patientKey);
    expect(body.state).toEqual({ known: true, active: false, since: "2026-10-14T12:00:00.000Z" });
    expect(body.events.map((e) => [e.kind, e.occurredAt, e.applied])).toEqual([
      ["deactivate", "2026-10-14T12:00:00.000Z", true],
      ["activate", "2026-10-12T12:00:00.000Z", true],
    ]);
    expect(body.events.every((e) => /^pev_/.test(e.id))).toBe(true);
    const october = invoices.find((i) => i.periodStart === "2026-10-01")!;
    // C was counted on October only (not September, not the November draft).
    expect(body.invoices.map((i) => [i.invoiceId, i.periodStart, i.cycleClosed])).toEqual([[october.id, "2026-10-01", true]]);
    expect(body.invoices[0]!.status).not.toBe("draft");
    expect(body).toMatchObject({ eventsTruncated: false, invoicesTruncated: false });

    // A: active since September, counted on September, October and (so far) the November draft.
    const a = (await (await trace(officeId, { patientId: "pt-trace-A" }, "platform_admin")).json()) as Trace;
    expect(a.state).toEqual({ known: true, active: true, since: "2026-09-05T12:00:00.000Z" });
    expect(a.invoices.map((i) => [i.periodStart, i.status === "draft"])).toEqual([["2026-11-01", true], ["2026-10-01", false], ["2026-09-01", false]]);

    const rows = await testDb().select().from(auditLog).where(sql`${auditLog.requestId} = ${res.headers.get("x-request-id")!}`);
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([["patient.billing", "allowed"]]);
    expect(rows[0]!.targetIds).toEqual([body.patientKey]);
    expect(rows[0]!.details).toEqual({ known: true, events: 2, invoices: 1 });
    expect(JSON.stringify(rows)).not.toContain("pt-trace");
  });

  it("answers a patient never seen as unknown with nothing counted", async () => {
    const { officeId } = await office();
    const body = (await (await trace(officeId, { patientId: "pt-trace-nobody" })).json()) as Trace;
    expect(body).toMatchObject({ state: { known: false, active: false, since: null }, events: [], invoices: [] });
    expect(body.patientKey).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses bad input with 400/415 and never echoes the id", async () => {
    const { officeId } = await office();
    await expectProblem(await trace(officeId, {}), 400, "VALIDATION_FAILED");
    await expectProblem(await trace(officeId, { patientId: "pt-trace-A", extra: 1 }), 400, "VALIDATION_FAILED");
    const bad = await trace(officeId, { patientId: "123-45-6789 Jane Roe" });
    const problem = await expectProblem(bad, 400, "VALIDATION_FAILED");
    expect(JSON.stringify(problem)).not.toMatch(/6789|Jane/);
    expect((await trace(officeId, "{not json")).status).toBe(400);
    await expectProblem(await trace(officeId, "patientId=pt-trace-A", "clinical_system", officeId, "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("is for the clinical system and platform_admin only; another office is a 404", async () => {
    const { officeId } = await office();
    await expectProblem(await trace(officeId, { patientId: "pt-trace-A" }, "office_admin"), 403, "FORBIDDEN");
    await expectProblem(await trace(officeId, { patientId: "pt-trace-A" }, "office_viewer"), 403, "FORBIDDEN");
    const other = await onboardOffice({ startsOn: "2026-09-01" });
    await expectProblem(await trace(officeId, { patientId: "pt-trace-A" }, "clinical_system", other), 404, "NOT_FOUND");
    await expectProblem(await trace("off_ffffffffffffffffffffffffffffffff", { patientId: "pt-trace-A" }, "platform_admin"), 404, "NOT_FOUND");
    const noAuth = await SELF.fetch(`${api}/offices/${officeId}/patient-billing`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ patientId: "pt-trace-A" }) });
    await expectProblem(noAuth, 401, "UNAUTHORIZED");
    // Another office's trace of the same patient id is another pseudonym with nothing counted.
    const elsewhere = (await (await trace(other, { patientId: "pt-trace-A" })).json()) as Trace;
    expect(elsewhere.state.known).toBe(false);
  });
});
