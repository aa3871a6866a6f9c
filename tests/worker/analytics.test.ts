import { SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { officeAnalytics } from "../../src/analytics/office";
import { platformAnalytics, type MonthFigures } from "../../src/analytics/platform";
import { setClock } from "../../src/clock";
import { invoiceLines, invoicePatients, invoices, invoiceLineKinds } from "../../src/db/invoices";
import { auditLog } from "../../src/db/audit";
import { creditNotes } from "../../src/db/credit-notes";
import { refunds } from "../../src/db/refunds";
import { webhookEvents } from "../../src/db/webhook-events";
import { newId } from "../../src/security/request-id";
import { withDbRoundTrips } from "../harness/round-trips";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { seedOffice, seedPlan, testDb } from "../harness/seed";

/**
 * docs/analytics.md: each figure equals a hand sum over the invoices seeded here (a plan of their
 * own, so the planId filter leaves out every other test's rows). The clock is set: 2025-03-20 UTC.
 */
const NOW = Date.UTC(2025, 2, 20);
const at = (iso: string) => Date.parse(iso);
type Kind = (typeof invoiceLineKinds)[number];

const db = testDb();
let planId = "";
const ids: Record<string, string> = {};

async function invoice(key: string, officeId: string, row: Partial<typeof invoices.$inferInsert>, lines: [Kind, number][] = []) {
  const id = newId("inv");
  ids[key] = id;
  const total = row.total ?? lines.reduce((s, [, a]) => s + a, 0);
  await db.batch([
    db.insert(invoices).values({ id, officeId, kind: "monthly", status: "paid", currency: "usd", periodStart: "2025-01-01", periodEnd: "2025-02-01", subtotal: total, updatedAt: NOW, ...row, total }),
    ...lines.map(([kind, amount], i) => db.insert(invoiceLines).values({ id: newId("li"), invoiceId: id, kind, description: kind, quantity: 1, amount, position: i })),
  ]);
  return id;
}

async function event(type: string, officeId: string, object: string, created: string, currency = "usd", status: "processed" | "failed" = "processed") {
  await db.insert(webhookEvents).values({
    id: newId("evt"),
    type,
    officeId,
    stripeObjectId: object,
    status,
    stripeCreatedAt: at(created),
    payload: { type, data: { object: { id: object, object: "invoice", currency } } },
    receivedAt: at(created),
  });
}

beforeAll(async () => {
  const plan = await seedPlan(db);
  planId = plan.planId;
  const on = { planVersionId: plan.versionId, timeZone: "UTC" };
  const a = (await seedOffice(db, { ...on, createdAt: at("2025-01-10T09:00:00Z") })).id;
  const b = (await seedOffice(db, { ...on, createdAt: at("2025-02-05T09:00:00Z"), status: "canceled", canceledAt: at("2025-03-05T00:00:00Z") })).id;
  const c = (await seedOffice(db, { ...on, createdAt: at("2024-12-01T09:00:00Z") })).id;
  const e = (await seedOffice(db, { ...on, createdAt: at("2024-06-01T09:00:00Z") })).id;
  ids.a = a;
  const feb = { periodStart: "2025-02-01", periodEnd: "2025-03-01", planVersionId: plan.versionId };
  const mar = { periodStart: "2025-03-01", periodEnd: "2025-04-01", planVersionId: plan.versionId, status: "draft" as const };
  const jan = { periodStart: "2025-01-01", periodEnd: "2025-02-01", planVersionId: plan.versionId };
  // January cycles, finalized on 1 February.
  await invoice("aJan", a, { ...jan, finalizedAt: at("2025-02-01T00:00:00Z"), paidAt: at("2025-02-03T00:00:00Z"), amountPaid: 8900, billablePatients: 5 }, [["patients", 3000], ["base_fee", 4900], ["one_off", 1000]]);
  await invoice("cJan", c, { ...jan, inTrial: true, finalizedAt: at("2025-02-01T00:00:00Z"), paidAt: at("2025-02-01T00:00:00Z"), billablePatients: 2 }, [["patients", 0]]);
  // February cycles, finalized on 1 March: A failed to pay, B paid and was partly refunded, C's was voided.
  await invoice("aFeb", a, { ...feb, status: "open", collectionMethod: "charge_automatically", finalizedAt: at("2025-03-01T00:00:00Z"), paymentFailedAt: at("2025-03-02T00:00:00Z"), billablePatients: 7 }, [["patients", 4000], ["base_fee", 4900], ["discount", -490]]);
  await invoice("bFeb", b, { ...feb, finalizedAt: at("2025-03-01T00:00:00Z"), paidAt: at("2025-03-01T01:00:00Z"), amountPaid: 5900, amountRefunded: 1000, billablePatients: 4 }, [["patients", 2000], ["base_fee", 4900], ["proration", -1000]]);
  await invoice("cFeb", c, { ...feb, status: "void", finalizedAt: at("2025-03-01T00:00:00Z"), voidedAt: at("2025-03-02T00:00:00Z"), billablePatients: 9 }, [["patients", 100], ["base_fee", 4900]]);
  await invoice("eFeb", e, { ...feb, currency: "eur", finalizedAt: at("2025-03-01T00:00:00Z"), paidAt: at("2025-03-04T00:00:00Z"), amountPaid: 3000, billablePatients: 2 }, [["patients", 1000], ["base_fee", 2000]]);
  // The current (March) cycles: drafts as they stand.
  await invoice("aMar", a, { ...mar, billablePatients: 3 }, [["patients", 1500], ["base_fee", 4900]]);
  await invoice("cMar", c, { ...mar, billablePatients: 1 }, [["patients", 800], ["base_fee", 4900]]);
  // Other invoices: past due by age, one not due yet, one carried below the minimum (never receivable).
  await invoice("aOld", a, { kind: "one_off", status: "open", collectionMethod: "send_invoice", periodStart: "2024-11-01", periodEnd: "2024-12-01", finalizedAt: at("2024-11-15T00:00:00Z"), dueAt: at("2024-12-15T00:00:00Z"), paymentFailedAt: at("2024-12-15T00:00:00Z") }, [["one_off", 2500]]);
  await invoice("cLate", c, { kind: "one_off", status: "open", collectionMethod: "send_invoice", periodStart: "2024-12-01", periodEnd: "2025-01-01", finalizedAt: at("2024-12-31T00:00:00Z"), dueAt: at("2025-02-01T00:00:00Z"), paymentFailedAt: at("2025-02-01T00:00:00Z") }, [["one_off", 300]]);
  await invoice("cSetup", c, { kind: "setup", status: "uncollectible", periodStart: "2024-12-01", periodEnd: "2024-12-01", finalizedAt: at("2025-01-05T00:00:00Z") }, [["setup_fee", 1200]]);
  await invoice("bNotDue", b, { kind: "one_off", status: "open", collectionMethod: "send_invoice", periodStart: "2025-03-01", periodEnd: "2025-04-01", finalizedAt: at("2025-03-15T00:00:00Z"), dueAt: at("2025-03-25T00:00:00Z") }, [["one_off", 700]]);
  await invoice("aCarried", a, { kind: "one_off", status: "paid", stripeState: "carried", periodStart: "2025-01-01", periodEnd: "2025-02-01", finalizedAt: at("2025-01-20T00:00:00Z") }, [["one_off", 30]]);
  await db.insert(refunds).values([
    { id: newId("rf"), officeId: b, invoiceId: ids.bFeb!, amount: 1000, reason: "billing_error", status: "succeeded", requestedBy: "admin", createdAt: at("2025-03-10T00:00:00Z"), updatedAt: NOW },
    { id: newId("rf"), officeId: b, invoiceId: ids.bFeb!, amount: 500, reason: "billing_error", status: "pending", requestedBy: "admin", createdAt: at("2025-03-11T00:00:00Z"), updatedAt: NOW },
  ]);
  await event("invoice.paid", a, `in_${ids.aJan}`, "2025-02-03T00:00:00Z");
  await event("invoice.payment_failed", a, `in_${ids.aFeb}`, "2025-03-02T00:00:00Z");
  await event("invoice.payment_failed", a, `in_${ids.aFeb}`, "2025-03-06T00:00:00Z");
  await event("invoice.paid", b, `in_${ids.bFeb}`, "2025-03-01T01:00:00Z");
  await event("invoice.payment_failed", b, `in_x${ids.bFeb}`, "2025-03-03T00:00:00Z", "usd", "failed");
  await event("invoice.paid", e, `in_${ids.eFeb}`, "2025-03-04T00:00:00Z", "eur");
});

afterEach(() => setClock());

const zero = { mrr: 0, mrrProjected: 0, arr: 0, activeOffices: 0, newOffices: 0, churnedOffices: 0, billablePatients: 0, averageRevenuePerOffice: null, invoiced: 0, collected: 0, collectionRate: null, receivables: 0, daysSalesOutstanding: null, paymentsAttempted: 0, paymentsFailed: 0, failedPaymentRate: null, refunds: 0, refundCount: 0, credits: 0, creditCount: 0 };

/** The hand sums (docs/analytics.md's definitions over the rows above). */
const expected: MonthFigures[] = [
  {
    month: "2025-01", currency: "eur", ...zero,
  },
  {
    month: "2025-02", currency: "eur", ...zero,
    mrr: 3000, mrrProjected: 3000, arr: 36000, activeOffices: 1, billablePatients: 2, averageRevenuePerOffice: 3000,
  },
  {
    month: "2025-03", currency: "eur", ...zero,
    invoiced: 3000, collected: 3000, collectionRate: 1, receivables: 0, daysSalesOutstanding: 0, paymentsAttempted: 1, failedPaymentRate: 0,
  },
  {
    // A (C in trial); the setup fee finalized in January, never paid; owed at the end: 2,500 + 300 from before, 1,200.
    month: "2025-01", currency: "usd", ...zero,
    mrr: 7900, mrrProjected: 7900, arr: 94800, activeOffices: 1, newOffices: 1, billablePatients: 7, averageRevenuePerOffice: 7900,
    invoiced: 1200, collected: 0, collectionRate: 0, receivables: 4000, daysSalesOutstanding: 103.3,
  },
  {
    // A and B (C's voided); A's January invoice finalized and paid in February.
    month: "2025-02", currency: "usd", ...zero,
    mrr: 8410 + 5900, mrrProjected: 14310, arr: 171720, activeOffices: 2, newOffices: 1, billablePatients: 11, averageRevenuePerOffice: 7155,
    invoiced: 8900, collected: 8900, collectionRate: 1, receivables: 4000, daysSalesOutstanding: 12.6, paymentsAttempted: 1, failedPaymentRate: 0,
  },
  {
    // The current month: drafts projected; February's invoices and B's one-off finalized; 19 days so far.
    month: "2025-03", currency: "usd", ...zero,
    mrr: 0, mrrProjected: 6400 + 5700, arr: 145200, activeOffices: 2, churnedOffices: 1, billablePatients: 4, averageRevenuePerOffice: 6050,
    invoiced: 8410 + 5900 + 700, collected: 5900, collectionRate: 0.3931, receivables: 4000 + 8410 + 700, daysSalesOutstanding: 16.6,
    paymentsAttempted: 2, paymentsFailed: 1, failedPaymentRate: 0.5, refunds: 1000, refundCount: 1,
  },
];

describe("platform analytics", () => {
  it("equals the hand sums over the seeded invoices, per month and currency, in one database round trip", async () => {
    const { trips, result: figures } = await withDbRoundTrips(() => platformAnalytics(testDb(), { from: "2025-01", to: "2025-03", planId, now: NOW }));
    expect(trips).toBe(1);
    expect(figures.months).toEqual(expected);
    // Past due now, by age: A's February (19 days since it was charged), C's late one-off (46 days past its due date), C's setup fee (uncollectible, 73 days), A's old one-off (95 days); B's one-off is not due yet.
    expect(figures.pastDue).toEqual([{ currency: "usd", "0-30": 8410, "31-60": 300, "61-90": 1200, over90: 2500, invoices: 4 }]);
    expect(figures.currentCycles).toEqual([{ currency: "usd", offices: 2, billablePatients: 4, mrrProjected: 12100, arrProjected: 145200, total: 12100 }]);
  });

  it("answers platform_admin over HTTP with the clock as the input, audited; other roles 403; a bad range 400", async () => {
    setClock(NOW);
    const admin = await mintToken("platform_admin");
    const res = await SELF.fetch(`https://billing.test/v1/analytics/platform?from=2025-01&to=2025-03&planId=${planId}`, { headers: bearer(admin) });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { asOf: string; months: MonthFigures[] };
    expect(body.asOf).toBe("2025-03-20T00:00:00.000Z");
    expect(body.months).toEqual(expected);
    const audit = await testDb().select().from(auditLog).where(eq(auditLog.requestId, res.headers.get("x-request-id")!));
    expect(audit.map((r) => [r.action, r.outcome])).toEqual([["analytics.platform", "allowed"]]);
    expect(audit[0]!.details).toMatchObject({ from: "2025-01", to: "2025-03", planId });

    for (const role of ["office_admin", "office_viewer", "clinical_system"] as const) {
      const token = await mintToken(role, [ids.a!]);
      await expectProblem(await SELF.fetch("https://billing.test/v1/analytics/platform?from=2025-01&to=2025-03", { headers: bearer(token) }), 403, "FORBIDDEN");
    }
    for (const q of ["from=2025-03&to=2025-01", "from=2025-13&to=2026-01", "from=2020-01&to=2025-01", "from=2025-01", "from=2025-01&to=2025-02&planId=nope"]) {
      await expectProblem(await SELF.fetch(`https://billing.test/v1/analytics/platform?${q}`, { headers: bearer(admin) }), 400, "VALIDATION_FAILED");
    }
  });

  it("without a plan, counts at least the seeded figures (every plan's offices)", async () => {
    const all = await platformAnalytics(testDb(), { from: "2025-01", to: "2025-03", now: NOW });
    const usdJan = all.months.find((m) => m.month === "2025-01" && m.currency === "usd")!;
    expect(usdJan.mrr).toBeGreaterThanOrEqual(7900);
    expect(all.months.every((m) => m.arr === 12 * m.mrrProjected)).toBe(true);
  });
});

describe("platform analytics with tax and credit notes", () => {
  // A plan of its own: office T on it. Its January invoice (10,000 + 825 tax) paid in February and
  // credited 500 back as a refund in March; a February one-off (2,000) credited 500 before it was
  // paid (1,500) in March; its February invoice (8,000 + 660 tax) open, failed, credited 1,000
  // (amount due 7,660); a failed credit note that counts nowhere.
  let plan2 = "";
  beforeAll(async () => {
    const plan = await seedPlan(db);
    plan2 = plan.planId;
    const t = (await seedOffice(db, { planVersionId: plan.versionId, timeZone: "UTC", createdAt: at("2025-01-10T09:00:00Z") })).id;
    const on = { planVersionId: plan.versionId, taxMode: "manual" as const, taxRateBps: 825 };
    await invoice("tJan", t, { ...on, periodStart: "2025-01-01", periodEnd: "2025-02-01", finalizedAt: at("2025-02-01T00:00:00Z"), paidAt: at("2025-02-02T00:00:00Z"), amountPaid: 10825, taxAmount: 825, totalIncludingTax: 10825, billablePatients: 3 }, [["patients", 5100], ["base_fee", 4900]]);
    await invoice("tFeb", t, { ...on, status: "open", collectionMethod: "charge_automatically", periodStart: "2025-02-01", periodEnd: "2025-03-01", finalizedAt: at("2025-03-01T00:00:00Z"), paymentFailedAt: at("2025-03-02T00:00:00Z"), taxAmount: 660, totalIncludingTax: 8660, billablePatients: 2 }, [["patients", 3100], ["base_fee", 4900]]);
    await invoice("tOne", t, { planVersionId: plan.versionId, kind: "one_off", periodStart: "2025-02-01", periodEnd: "2025-03-01", finalizedAt: at("2025-02-10T00:00:00Z"), paidAt: at("2025-03-03T00:00:00Z"), amountPaid: 1500 }, [["one_off", 2000]]);
    const note = (invoiceId: string, amount: number, settlement: "none" | "refund", created: string, status: "issued" | "failed" = "issued") =>
      ({ id: newId("cn"), officeId: t, invoiceId, amount, reason: "order_change" as const, memo: "billing_error" as const, settlement, status, requestedBy: "admin", createdAt: at(created), updatedAt: NOW });
    await db.insert(creditNotes).values([
      note(ids.tOne!, 500, "none", "2025-02-12T00:00:00Z"),
      note(ids.tFeb!, 1000, "none", "2025-03-05T00:00:00Z"),
      note(ids.tJan!, 500, "refund", "2025-03-06T00:00:00Z"),
      note(ids.tFeb!, 300, "none", "2025-03-07T00:00:00Z", "failed"),
    ]);
  });

  it("counts invoiced, collected, receivables and past due with tax and less credit notes; MRR without tax; credits per month", async () => {
    const figures = await platformAnalytics(testDb(), { from: "2025-01", to: "2025-03", planId: plan2, now: NOW });
    expect(figures.months).toEqual([
      { month: "2025-01", currency: "usd", ...zero, mrr: 10000, mrrProjected: 10000, arr: 120000, activeOffices: 1, newOffices: 1, billablePatients: 3, averageRevenuePerOffice: 10000 },
      {
        // January's invoice with its tax, paid in full (rate 1, not above it); the one-off owes 2,000 − 500 at the month's end.
        month: "2025-02", currency: "usd", ...zero, mrr: 8000, mrrProjected: 8000, arr: 96000, activeOffices: 1, billablePatients: 2, averageRevenuePerOffice: 8000,
        invoiced: 10825 + 2000, collected: 10825 + 1500, collectionRate: 0.961, receivables: 1500, daysSalesOutstanding: 3.3, credits: 500, creditCount: 1,
      },
      {
        // February's invoice with its tax, less its 1,000 credit; the one-off paid what it owed; 19 days so far.
        month: "2025-03", currency: "usd", ...zero,
        invoiced: 8660, collected: 0, collectionRate: 0, receivables: 7660, daysSalesOutstanding: 16.8, credits: 1500, creditCount: 2,
      },
    ]);
    expect(figures.pastDue).toEqual([{ currency: "usd", "0-30": 7660, "31-60": 0, "61-90": 0, over90: 0, invoices: 1 }]);
  });

  it("exports the invoices with their tax and credits, and the credit notes", async () => {
    setClock(NOW);
    const admin = bearer(await mintToken("platform_admin"));
    const rows = async (dataset: string) => {
      const res = await SELF.fetch(`https://billing.test/v1/exports/${dataset}?from=2025-02-01&to=2025-03-31&format=ndjson&officeId=${(await db.select().from(invoices).where(eq(invoices.id, ids.tFeb!)))[0]!.officeId}`, { headers: admin });
      expect(res.status, await res.clone().text()).toBe(200);
      return (await res.text()).trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const inv = await rows("invoices");
    expect(inv.map((r) => [r.invoice_id, r.total, r.tax_amount, r.total_including_tax, r.amount_credited, r.amount_paid])).toEqual([
      [ids.tJan, 10000, 825, 10825, 500, 10825],
      [ids.tOne, 2000, 0, 2000, 500, 1500],
      [ids.tFeb, 8000, 660, 8660, 1000, 0],
    ]);
    const notes = await rows("credit-notes");
    expect(notes.map((r) => [r.invoice_id, r.amount, r.settlement, r.status, r.memo, r.currency, r.source])).toEqual([
      [ids.tOne, 500, "none", "issued", "billing_error", "usd", "api"],
      [ids.tFeb, 1000, "none", "issued", "billing_error", "usd", "api"],
      [ids.tJan, 500, "refund", "issued", "billing_error", "usd", "api"],
      [ids.tFeb, 300, "none", "failed", "billing_error", "usd", "api"],
    ]);
    expect(Object.keys(notes[0]!)).toEqual(["credit_note_id", "invoice_id", "office_id", "currency", "amount", "reason", "memo", "settlement", "status", "source", "error_code", "created_at", "updated_at"]);
  });
});

describe("office analytics", () => {
  it("gives billable patients and spend per cycle, the current cycle so far and its projection", async () => {
    // A's March draft: 3 patients counted on the first day, 2 arrivals later (by day 10 of a 31-day cycle).
    const a = ids.a!;
    await db.insert(invoicePatients).values([
      ...[1, 2, 3].map((n) => ({ invoiceId: ids.aMar!, officeId: a, patientKey: `k${n}`, countedAt: at("2025-03-01T00:00:00Z") })),
      ...[4, 5].map((n) => ({ invoiceId: ids.aMar!, officeId: a, patientKey: `k${n}`, countedAt: at("2025-03-08T00:00:00Z") })),
    ]);
    await db.update(invoices).set({ billablePatients: 5, periodStartAt: at("2025-03-01T00:00:00Z"), periodEndAt: at("2025-04-01T00:00:00Z") }).where(eq(invoices.id, ids.aMar!));
    const now = at("2025-03-11T00:00:00Z");
    const figures = (await officeAnalytics(testDb(), a, 12, now))!;
    expect(figures.cycles.map((c) => [c.periodStart, c.status, c.billablePatients, c.invoiceTotal, c.otherInvoices, c.spend, c.amountPaid])).toEqual([
      ["2025-03-01", "draft", 5, 6400, 0, 6400, 0],
      ["2025-02-01", "open", 7, 8410, 0, 8410, 0],
      // January: the monthly invoice and the carried one-off of the cycle.
      ["2025-01-01", "paid", 5, 8900, 30, 8930, 8900],
    ]);
    // 2 arrivals over the 9 days after the first: 0.22 a day, 21 days left: 5 more, priced by the tiers (8.00 each up to 50).
    expect(figures.current).toEqual({
      periodStart: "2025-03-01",
      periodEnd: "2025-04-01",
      currency: "usd",
      elapsedDays: 10,
      remainingDays: 21,
      soFar: { billablePatients: 5, total: 6400 },
      projection: { billablePatients: 10, total: 6400 - 1500 + 10 * 800, arrivalsPerDay: 0.22 },
    });
  });

  it("answers the office's roles and platform_admin, 404 for another office, 403 for the clinical system", async () => {
    const other = await seedOffice(db);
    const path = `https://billing.test/v1/offices/${ids.a}/analytics?cycles=2`;
    for (const role of ["platform_admin", "office_admin", "office_viewer"] as const) {
      const res = await SELF.fetch(path, { headers: bearer(await mintToken(role, role === "platform_admin" ? [] : [ids.a!])) });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(((await res.json()) as { cycles: unknown[] }).cycles).toHaveLength(2);
    }
    await expectProblem(await SELF.fetch(path, { headers: bearer(await mintToken("clinical_system", [ids.a!])) }), 403, "FORBIDDEN");
    await expectProblem(await SELF.fetch(path, { headers: bearer(await mintToken("office_admin", [other.id])) }), 404, "NOT_FOUND");
    await expectProblem(await SELF.fetch(`https://billing.test/v1/offices/off_ffffffffffffffffffffffffffffffff/analytics`, { headers: bearer(await mintToken("platform_admin")) }), 404, "NOT_FOUND");
    await expectProblem(await SELF.fetch(`${path.replace("cycles=2", "cycles=99")}`, { headers: bearer(await mintToken("platform_admin")) }), 400, "VALIDATION_FAILED");
  });
});
