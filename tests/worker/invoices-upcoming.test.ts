import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { bearer, mintToken } from "../harness/auth";
import { monthlyInvoices, onboardOffice, reportEvent, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { seedPlan, testDb } from "../harness/seed";

const api = "https://billing.test/v1/offices";
type Role = "platform_admin" | "office_admin" | "office_viewer" | "clinical_system";

async function upcoming(officeId: string, role: Role = "office_viewer", scope: string = officeId) {
  return SELF.fetch(`${api}/${officeId}/invoices/upcoming`, { headers: bearer(await mintToken(role, role === "platform_admin" ? [] : [scope])) });
}
async function post(path: string, body: unknown, role: Role = "platform_admin") {
  const officeId = path.split("/")[0]!;
  const res = await SELF.fetch(`${api}/${path}`, {
    method: "POST",
    headers: { ...bearer(await mintToken(role, role === "platform_admin" ? [] : [officeId])), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
}

type Upcoming = {
  invoiceId: string;
  periodStart: string;
  periodEnd: string;
  subtotal: number;
  total: number;
  lines: { kind: string; description: string; quantity: number; unitAmount: number | null; rankFrom: number | null; rankTo: number | null; amount: number; periodStart: string | null; periodEnd: string | null }[];
  patients: { billable: number; included: number; tiers: { from: number; to: number | null; quantity: number; unitAmount: number; amount: number }[] };
  cancelAtPeriodEnd: boolean;
  next: null | { periodStart: string; periodEnd: string; planVersionId: string; planChanged: boolean; baseFee: number; status: string };
  statusAfterClose: string;
};

describe("GET /v1/offices/{officeId}/invoices/upcoming", () => {
  it("previews the current cycle's invoice exactly as the close then bills it: lines, totals, patient count per tier", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { tiers: [{ upTo: 2, unitAmount: 800 }, { upTo: null, unitAmount: 600 }], includedPatients: 1 } });
    await reportEvent(office, "pt-1", "activate", "2026-01-02T10:00:00Z");
    await reportEvent(office, "pt-2", "activate", "2026-01-03T10:00:00Z");
    await reportEvent(office, "pt-3", "activate", "2026-01-04T10:00:00Z");
    await reportEvent(office, "pt-3", "deactivate", "2026-01-05T10:00:00Z"); // active at some instant: billable
    await reportEvent(office, "pt-4", "activate", "2026-01-06T10:00:00Z");
    await post(`${office}/charges`, { amount: 500, category: "training", mode: "add_to_current" });

    const res = await upcoming(office, "office_viewer");
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.text();
    for (const id of ["pt-1", "pt-2", "pt-3", "pt-4"]) expect(body).not.toContain(id);
    const preview = JSON.parse(body) as Upcoming;
    // 4 patients, 1 included: rank 2 at 800, ranks 3–4 at 600.
    expect(preview.patients).toEqual({
      billable: 4,
      included: 1,
      tiers: [
        { from: 1, to: 2, quantity: 1, unitAmount: 800, amount: 800 },
        { from: 3, to: null, quantity: 2, unitAmount: 600, amount: 1200 },
      ],
    });
    expect(preview).toMatchObject({ periodStart: "2026-01-01", periodEnd: "2026-02-01", subtotal: 2000 + 4900 + 500, total: 2000 + 4900 + 500, cancelAtPeriodEnd: false, statusAfterClose: "active" });
    // A line per tier that charges, quantity × unit price, the allowance above rank 1 (§6.1).
    expect(preview.lines.filter((l) => l.kind === "patients")).toEqual([
      { id: null, kind: "patients", description: "Active patients 2 — Jan 2026", category: null, quantity: 1, unitAmount: 800, rankFrom: 2, rankTo: 2, amount: 800, periodStart: "2026-01-01", periodEnd: "2026-02-01" },
      { id: null, kind: "patients", description: "Active patients 3+ — Jan 2026", category: null, quantity: 2, unitAmount: 600, rankFrom: 3, rankTo: null, amount: 1200, periodStart: "2026-01-01", periodEnd: "2026-02-01" },
    ]);
    expect(preview.next).toMatchObject({ periodStart: "2026-02-01", periodEnd: "2026-03-01", planChanged: false, baseFee: 4900, status: "active" });

    // The close just after the cycle's end bills exactly the preview.
    await runInvoicing([office], "2026-02-01T05:00:01Z");
    const [closed, opened] = await monthlyInvoices(office);
    expect(closed!.id).toBe(preview.invoiceId);
    expect(closed!.status).toBe("open");
    expect({ subtotal: closed!.subtotal, total: closed!.total }).toEqual({ subtotal: preview.subtotal, total: preview.total });
    const strip = (l: Upcoming["lines"][number]) => ({ kind: l.kind, description: l.description, quantity: l.quantity, unitAmount: l.unitAmount, rankFrom: l.rankFrom, rankTo: l.rankTo, amount: l.amount, periodStart: l.periodStart, periodEnd: l.periodEnd });
    expect(closed!.lines.map(strip)).toEqual(preview.lines.map(strip));
    expect(opened).toMatchObject({ periodStart: preview.next!.periodStart, periodEnd: preview.next!.periodEnd, planVersionId: preview.next!.planVersionId });

    // The next cycle's preview: pt-1, pt-2, pt-4 carried in.
    const after = (await (await upcoming(office, "platform_admin")).json()) as Upcoming;
    expect(after).toMatchObject({ invoiceId: opened!.id, periodStart: "2026-02-01", patients: { billable: 3 } });
  });

  it("applies a plan change scheduled for the period end to the next cycle, not the current one", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    await reportEvent(office, "pt-1", "activate", "2026-01-02T10:00:00Z");
    const { planId, versionId } = await seedPlan(testDb(), { baseFee: 9900 });
    await post(`${office}/plan`, { planId, when: "next_cycle" });
    const preview = (await (await upcoming(office, "office_admin")).json()) as Upcoming;
    expect(preview).toMatchObject({ total: 800 + 4900, next: { planVersionId: versionId, planChanged: true, baseFee: 9900 } });
    await runInvoicing([office], "2026-02-01T05:00:01Z");
    const [closed, opened] = await monthlyInvoices(office);
    expect(closed!.total).toBe(preview.total);
    expect(opened!.planVersionId).toBe(versionId);
  });

  it("shows a cancellation at period end: the cycle closes, no next cycle; a canceled office has none (409)", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    await reportEvent(office, "pt-1", "activate", "2026-01-02T10:00:00Z");
    await post(`${office}/cancel`, { when: "period_end" });
    const preview = (await (await upcoming(office, "office_admin")).json()) as Upcoming;
    expect(preview).toMatchObject({ cancelAtPeriodEnd: true, next: null, statusAfterClose: "canceled", total: 800 + 4900, patients: { billable: 1 } });
    await runInvoicing([office], "2026-02-01T05:00:01Z");
    const [closed] = await monthlyInvoices(office);
    expect(closed!.total).toBe(preview.total);
    await expectProblem(await upcoming(office, "office_admin"), 409, "CONFLICT");
  });

  it("answers 404 for another office or an unknown one, and 403 to the clinical system", async () => {
    const mine = await onboardOffice({ startsOn: "2026-01-01" });
    const theirs = await onboardOffice({ startsOn: "2026-01-01" });
    await expectProblem(await upcoming(theirs, "office_admin", mine), 404, "NOT_FOUND");
    await expectProblem(await upcoming(theirs, "office_viewer", mine), 404, "NOT_FOUND");
    await expectProblem(await upcoming("off_ffffffffffffffffffffffffffffffff", "platform_admin"), 404, "NOT_FOUND");
    await expectProblem(await upcoming(mine, "clinical_system"), 403, "FORBIDDEN");
    expect((await upcoming(mine, "office_viewer")).status).toBe(200);
  });
});
