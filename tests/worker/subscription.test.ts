import { SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { addDays, cycleContaining, daysBetween, localDate, startOfLocalDay } from "../../src/billing/calendar";
import { prorate } from "../../src/billing/pricing";
import { offices } from "../../src/db/offices";
import { plans } from "../../src/db/plans";
import { bearer, mintToken } from "../harness/auth";
import { baseLine, monthlyInvoices, onboardOffice, patientsLine, reportEvent, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { seedPlan, testDb } from "../harness/seed";

async function post(officeId: string, action: "plan" | "cancel" | "resume", body?: unknown, role: "office_admin" | "platform_admin" = "office_admin") {
  return SELF.fetch(`https://billing.test/v1/offices/${officeId}/${action}`, {
    method: "POST",
    headers: { ...bearer(await mintToken(role, role === "platform_admin" ? [] : [officeId])), ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
}
const officeRow = async (id: string) => (await testDb().select().from(offices).where(eq(offices.id, id)))[0]!;

describe("plan change", () => {
  it("next_cycle: the new plan's prices apply from the next cycle (both ways)", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 4900 } });
    const cheaper = await seedPlan(testDb(), { baseFee: 1900, tiers: [{ upTo: null, unitAmount: 500 }] });
    await reportEvent(office, "p", "activate", "2026-01-02T10:00:00Z");
    expect((await post(office, "plan", { planId: cheaper.planId })).status).toBe(200);
    expect(await officeRow(office)).toMatchObject({ pendingPlanVersionId: cheaper.versionId });
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    const [jan, feb] = await monthlyInvoices(office);
    expect(jan!.total).toBe(800 + 4900); // January on the old plan
    expect(feb!.total).toBe(500 + 1900); // February on the new one
    expect(await officeRow(office)).toMatchObject({ planVersionId: cheaper.versionId, pendingPlanVersionId: null });
    // And back up again.
    const dearer = await seedPlan(testDb(), { baseFee: 9900 });
    await post(office, "plan", { planId: dearer.planId, when: "next_cycle" });
    await runInvoicing([office], "2026-03-01T06:00:00Z");
    expect((await monthlyInvoices(office))[2]!.total).toBe(800 + 9900);
  });

  it("immediately: the base fee is prorated by days on each plan; patients priced by the new plan", async () => {
    const today = new Date().toISOString().slice(0, 10); // the change happens today (UTC office)
    const start = `${today.slice(0, 7)}-01`;
    const office = await onboardOffice({ startsOn: start, timeZone: "UTC", plan: { baseFee: 3100 } });
    const other = await seedPlan(testDb(), { baseFee: 6200, tiers: [{ upTo: null, unitAmount: 100 }] });
    await reportEvent(office, "q", "activate", new Date().toISOString());
    expect((await post(office, "plan", { planId: other.planId, when: "immediately" })).status).toBe(200);
    const [draft] = await monthlyInvoices(office);
    const day = Number(today.slice(8, 10));
    const days = new Date(Date.UTC(Number(today.slice(0, 4)), Number(today.slice(5, 7)), 0)).getUTCDate();
    const oldPart = Math.floor((3100 * (day - 1) * 2 + days) / (2 * days));
    const newPart = Math.floor((6200 * (days - day + 1) * 2 + days) / (2 * days));
    // No zero-amount line: on a cycle's first day the old plan keeps no day, and its line goes.
    const nonZero = (amounts: number[]) => amounts.filter((a) => a > 0).sort((a, b) => a - b);
    expect(draft!.lines.filter((l) => l.kind === "base_fee" || l.kind === "proration").map((l) => l.amount).sort((a, b) => a - b)).toEqual(nonZero([oldPart, newPart]));
    // Repriced at once with the new plan, without waiting for another event.
    expect(patientsLine(draft!)).toMatchObject({ quantity: 1, amount: 100 });
    await reportEvent(office, "r", "activate", new Date().toISOString());
    expect(patientsLine((await monthlyInvoices(office))[0]!)).toMatchObject({ quantity: 2, amount: 200 });

    // A second immediate change keeps the earlier plans' days at their prices.
    const third = await seedPlan(testDb(), { baseFee: 9300, tiers: [{ upTo: null, unitAmount: 100 }] });
    expect((await post(office, "plan", { planId: third.planId, when: "immediately" })).status).toBe(200);
    const fees = (await monthlyInvoices(office))[0]!.lines.filter((l) => l.kind === "base_fee" || l.kind === "proration");
    const thirdPart = Math.floor((9300 * (days - day + 1) * 2 + days) / (2 * days));
    // The second plan's line, cut to no day, is removed rather than left at 0.
    expect(fees.map((l) => l.amount).sort((a, b) => a - b)).toEqual(nonZero([oldPart, thirdPart]));

    // Canceling now keeps each plan's days up to today, included.
    expect((await post(office, "cancel", { when: "immediately" }, "platform_admin")).status).toBe(200);
    const closed = (await monthlyInvoices(office))[0]!;
    expect(closed.lines.filter((l) => l.kind === "base_fee" || l.kind === "proration").map((l) => l.amount).sort((a, b) => a - b)).toEqual(
      nonZero([oldPart, Math.floor((thirdPart * 1 * 2 + (days - day + 1)) / (2 * (days - day + 1)))]),
    );
    expect(closed.status).toBe("open");
  });

  it("refuses a retired plan", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    const retired = await seedPlan(testDb());
    await testDb().update(plans).set({ status: "retired" }).where(eq(plans.id, retired.planId));
    await expectProblem(await post(office, "plan", { planId: retired.planId }), 409, "CONFLICT");
  });
});

describe("cancel and resume", () => {
  it("cancel at period end: the cycle is invoiced, then the office is canceled and takes no activations", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    await reportEvent(office, "c1", "activate", "2026-01-02T10:00:00Z");
    const res = await post(office, "cancel", { when: "period_end" });
    expect(((await res.json()) as { cancelAtPeriodEnd: boolean }).cancelAtPeriodEnd).toBe(true);
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    const all = await monthlyInvoices(office);
    expect(all.map((i) => [i.periodStart, i.status])).toEqual([["2026-01-01", "open"]]);
    expect((await officeRow(office)).status).toBe("canceled");
    const activation = await SELF.fetch(`https://billing.test/v1/offices/${office}/patients/c2/activate`, {
      method: "POST",
      headers: { ...bearer(await mintToken("clinical_system", [office])), "content-type": "application/json", "idempotency-key": "after-cancel" },
      body: JSON.stringify({ occurredAt: "2026-02-02T10:00:00Z" }),
    });
    await expectProblem(activation, 409, "CONFLICT");
  });

  it("resume before the period ends keeps the subscription going", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    await post(office, "cancel");
    expect(((await (await post(office, "resume")).json()) as { cancelAtPeriodEnd: boolean }).cancelAtPeriodEnd).toBe(false);
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    expect((await monthlyInvoices(office)).map((i) => i.status)).toEqual(["open", "draft"]);
    await expectProblem(await post(office, "resume"), 409, "CONFLICT");
  });

  it("cancel immediately is platform_admin's: the current invoice is finalized now", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    await reportEvent(office, "i1", "activate", "2026-01-02T10:00:00Z");
    await expectProblem(await post(office, "cancel", { when: "immediately" }), 403, "FORBIDDEN");
    expect((await post(office, "cancel", { when: "immediately" }, "platform_admin")).status).toBe(200);
    const [jan] = await monthlyInvoices(office);
    expect(jan).toMatchObject({ status: "open", total: 800 });
    expect(baseLine(jan!)).toBeUndefined();
    expect((await officeRow(office)).status).toBe("canceled");
    await expectProblem(await post(office, "cancel", undefined, "platform_admin"), 409, "CONFLICT");
  });

  it("an invoice canceled immediately ends at the cancellation (today included), and a canceled office has no current cycle", async () => {
    const tz = "America/New_York";
    const today = localDate(Date.now(), tz);
    const office = await onboardOffice({ startsOn: today, timeZone: tz, plan: { baseFee: 3100 } });
    const cycle = cycleContaining(today, 1);
    const until = addDays(today, 1) < cycle.end ? addDays(today, 1) : cycle.end;
    for (const p of ["pt-c1", "pt-c2"]) await reportEvent(office, p, "activate", new Date().toISOString());
    expect((await post(office, "cancel", { when: "immediately" }, "platform_admin")).status).toBe(200);
    const [inv] = await monthlyInvoices(office);
    expect(inv).toMatchObject({ periodStart: cycle.start, periodEnd: until, periodEndAt: startOfLocalDay(until, tz), status: "open", billablePatients: 2 });
    // The running count became tier lines over the days used.
    const tiers = inv!.lines.filter((l) => l.kind === "patients");
    expect(tiers.map((l) => [l.quantity, l.unitAmount, l.amount, l.periodStart, l.periodEnd])).toEqual([[2, 800, 1600, cycle.start, until]]);
    expect(patientsLine(inv!)).toMatchObject({ quantity: 2, amount: 1600 });
    // One day used (today) of the cycle's days: 3100 × 1 ÷ cycle days, half up.
    expect(baseLine(inv!)).toMatchObject({ periodEnd: until, amount: prorate(3100, daysBetween(today, until), daysBetween(cycle.start, cycle.end)) });
    const res = await SELF.fetch(`https://billing.test/v1/offices/${office}`, { headers: bearer(await mintToken("platform_admin")) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "canceled", currentCycle: null });
  });

  it("an office canceled at period end has no current cycle once its last cycle closed", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    expect((await post(office, "cancel", undefined)).status).toBe(200);
    const view = async () => (await (await SELF.fetch(`https://billing.test/v1/offices/${office}`, { headers: bearer(await mintToken("platform_admin")) })).json()) as { currentCycle: unknown };
    expect((await view()).currentCycle).toEqual({ start: "2026-01-01", end: "2026-02-01" });
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    expect(await view()).toMatchObject({ status: "canceled", currentCycle: null });
  });
});
