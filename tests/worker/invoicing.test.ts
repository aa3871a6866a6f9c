import { eq } from "drizzle-orm";
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { offices } from "../../src/db/offices";
import { closeReads, closeStateFrom, closeStatements } from "../../src/office/close-cycle";
import { testDb } from "../harness/seed";
import type { OfficeBilling } from "../../src/office/office-billing";
import { syncStripe } from "../harness/stripe";
import { baseLine, monthlyInvoices, onboardOffice, patientsLine, reportEvent, runInvoicing } from "../harness/billing";
import { countDbRoundTrips } from "../harness/round-trips";

// Tiers (harness default): 1–50 at 800, 51–200 at 600, 201+ at 400; base fee 4900 unless stated.

describe("the current invoice", () => {
  it("counts each patient active at any moment of the cycle once, however often toggled", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    await reportEvent(office, "p1", "activate", "2026-01-02T10:00:00Z");
    await reportEvent(office, "p2", "activate", "2026-01-03T10:00:00Z");
    await reportEvent(office, "p2", "deactivate", "2026-01-04T10:00:00Z"); // still billable this cycle
    await reportEvent(office, "p2", "activate", "2026-01-05T10:00:00Z"); // reactivated: counted once
    await reportEvent(office, "p3", "activate", "2026-01-06T10:00:00Z");
    const [draft] = await monthlyInvoices(office);
    expect(patientsLine(draft!)).toMatchObject({ quantity: 3, amount: 2400, description: "Active patients — Jan 2026" });
    expect(draft).toMatchObject({ status: "draft", total: 2400 + 4900 });
  });

  it("prices the tier boundary at exactly 50 and 51 patients", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    for (let i = 1; i <= 50; i++) await reportEvent(office, `b${i}`, "activate", "2026-01-02T10:00:00Z");
    expect(patientsLine((await monthlyInvoices(office))[0]!)).toMatchObject({ quantity: 50, amount: 40_000 });
    await reportEvent(office, "b51", "activate", "2026-01-02T10:00:00Z");
    expect(patientsLine((await monthlyInvoices(office))[0]!)).toMatchObject({ quantity: 51, amount: 40_600 });
  }, 240_000); // heavy: many requests; generous for a busy machine

  it("counts 200 concurrent activations of distinct patients exactly, and 50 of one patient once", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    await Promise.all(Array.from({ length: 200 }, (_, i) => reportEvent(office, `c${i}`, "activate", "2026-01-10T10:00:00Z")));
    await Promise.all(Array.from({ length: 50 }, () => reportEvent(office, "same", "activate", "2026-01-11T10:00:00Z")));
    // 201 patients: 50 × 800 + 150 × 600 + 1 × 400.
    expect(patientsLine((await monthlyInvoices(office))[0]!)).toMatchObject({ quantity: 201, amount: 130_400 });
  }, 240_000); // heavy: many requests; generous for a busy machine
});

describe("the monthly close", () => {
  it("finalizes the cycle's invoice and opens the next with the still-active patients carried in", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-05" });
    await reportEvent(office, "k1", "activate", "2026-01-06T10:00:00Z");
    await reportEvent(office, "k2", "activate", "2026-01-07T10:00:00Z");
    await reportEvent(office, "k3", "activate", "2026-01-08T10:00:00Z");
    await reportEvent(office, "k3", "deactivate", "2026-01-20T10:00:00Z");
    const run = await runInvoicing([office], "2026-02-01T05:00:00Z"); // local midnight in New York
    expect(run.offices[0]!.invoices).toHaveLength(1);
    const [jan, feb] = await monthlyInvoices(office);
    // January: 3 patients (2,400) + base fee for Jan 5–31, 27 of 31 days: 4900 × 27 / 31 = 4267.7 → 4268.
    expect(jan).toMatchObject({ status: "open", periodStart: "2026-01-01", periodEnd: "2026-02-01", total: 2400 + 4268 });
    expect(jan!.finalizedAt).toBeGreaterThan(0);
    expect(feb).toMatchObject({ status: "draft", periodStart: "2026-02-01", periodEnd: "2026-03-01" });
    expect(patientsLine(feb!)).toMatchObject({ quantity: 2, amount: 1600, description: "Active patients — Feb 2026" });
    expect(baseLine(feb!)).toMatchObject({ amount: 4900, description: "Platform fee — Feb 2026" });
  });

  it("does not close before the office's local midnight", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-05" });
    const run = await runInvoicing([office], "2026-02-01T04:59:59Z"); // 23:59:59 on Jan 31 in New York
    expect(run.offices).toEqual([]);
    expect(await monthlyInvoices(office)).toHaveLength(1);
  });

  it("is exactly once: run twice, and concurrently, there is one invoice per period", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-05" });
    await reportEvent(office, "e1", "activate", "2026-01-06T10:00:00Z");
    await Promise.all([runInvoicing([office], "2026-02-01T06:00:00Z"), runInvoicing([office], "2026-02-01T06:00:00Z"), runInvoicing([office], "2026-02-01T06:00:00Z")]);
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    const all = await monthlyInvoices(office);
    expect(all.map((i) => [i.periodStart, i.status])).toEqual([
      ["2026-01-01", "open"],
      ["2026-02-01", "draft"],
    ]);
  });

  it("a close interrupted after its database write and before anything else is not repeated", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-05" });
    await reportEvent(office, "z1", "activate", "2026-01-06T10:00:00Z");
    // The close's write commits, then its worker dies: no answer, no acknowledgement, the office
    // object never hears of it (the batch is run here directly, outside the object).
    const db = testDb();
    const state = closeStateFrom(await db.batch(closeReads(db, office)));
    const plan = closeStatements(db, { ...state, office: state.office!, draft: state.draft! }, Date.UTC(2026, 1, 1, 6), Date.UTC(2026, 1, 1, 6));
    await db.batch(plan.statements as never);
    // The queue redelivers, the cron runs again, an admin re-runs: nothing is closed twice.
    await runInvoicing([office], "2026-02-01T07:00:00Z");
    await runInvoicing([office], "2026-02-01T08:00:00Z");
    expect((await monthlyInvoices(office)).map((i) => [i.periodStart, i.status])).toEqual([
      ["2026-01-01", "open"],
      ["2026-02-01", "draft"],
    ]);
  });

  it("catches up several missed cycles in one run", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 1000 } });
    await reportEvent(office, "m1", "activate", "2026-01-02T10:00:00Z");
    await runInvoicing([office], "2026-04-15T00:00:00Z");
    const all = await monthlyInvoices(office);
    expect(all.map((i) => [i.periodStart, i.status, i.total])).toEqual([
      ["2026-01-01", "open", 1800],
      ["2026-02-01", "open", 1800],
      ["2026-03-01", "open", 1800],
      ["2026-04-01", "draft", 1800],
    ]);
  });

  it("records a zero-amount invoice as paid, without anything to send", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    await runInvoicing([office], "2026-02-02T00:00:00Z");
    const [jan] = await monthlyInvoices(office);
    expect(jan).toMatchObject({ status: "paid", total: 0, stripeState: "none" });
  });

  it("dry run reports the drafts that would be finalized and changes nothing", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    await reportEvent(office, "d1", "activate", "2026-01-02T10:00:00Z");
    const run = await runInvoicing([office], "2026-02-02T00:00:00Z", true);
    expect(run.offices[0]!.invoices[0]).toMatchObject({ periodStart: "2026-01-01", total: 800 + 4900 });
    expect((await monthlyInvoices(office)).map((i) => i.status)).toEqual(["draft"]);
  });

  it("a dry run of a catch-up lists every cycle the close would finalize, with the close's totals", async () => {
    const office = await onboardOffice({ startsOn: "2026-09-01", plan: { baseFee: 0 } });
    await reportEvent(office, "dry", "activate", "2026-09-04T10:00:00Z");
    await reportEvent(office, "dry", "deactivate", "2026-10-10T10:00:00Z");
    const dry = await runInvoicing([office], "2026-11-10T12:00:00Z", true);
    const [sep] = await monthlyInvoices(office);
    expect(dry.offices[0]!.invoices).toEqual([
      { invoiceId: sep!.id, periodStart: "2026-09-01", periodEnd: "2026-10-01", total: 800 },
      { invoiceId: null, periodStart: "2026-10-01", periodEnd: "2026-11-01", total: 800 },
    ]);
    expect((await monthlyInvoices(office)).map((i) => i.status)).toEqual(["draft"]);
    const run = await runInvoicing([office], "2026-11-10T12:00:00Z");
    expect(run.offices[0]!.invoices.map(({ periodStart, total }) => ({ periodStart, total }))).toEqual(dry.offices[0]!.invoices.map(({ periodStart, total }) => ({ periodStart, total })));
  });

  it("closes UTC+14 and UTC−10 offices at the same instant", async () => {
    const kiritimati = await onboardOffice({ startsOn: "2026-01-10", timeZone: "Pacific/Kiritimati", anchor: 1 });
    const honolulu = await onboardOffice({ startsOn: "2026-01-10", timeZone: "Pacific/Honolulu", anchor: 31 });
    // 2026-01-31T10:00Z: Feb 1 00:00 in Kiritimati, Jan 31 00:00 in Honolulu — both cycles end.
    expect((await runInvoicing([kiritimati, honolulu], "2026-01-31T09:59:59Z")).offices).toEqual([]);
    const run = await runInvoicing([kiritimati, honolulu], "2026-01-31T10:00:00Z");
    expect(run.offices.map((o) => o.invoices.length)).toEqual([1, 1]);
    expect((await monthlyInvoices(kiritimati)).at(-1)).toMatchObject({ periodStart: "2026-02-01" });
    expect((await monthlyInvoices(honolulu)).at(-1)).toMatchObject({ periodStart: "2026-01-31", periodEnd: "2026-02-28" });
  });
});

describe("a run for a date: the cycles that ended by its start in each office's zone", () => {
  it("closes a UTC+14 office's cycle only from the date it ended on there, not from the UTC date before", async () => {
    const kiritimati = await onboardOffice({ startsOn: "2026-01-10", timeZone: "Pacific/Kiritimati", anchor: 1 });
    const honolulu = await onboardOffice({ startsOn: "2026-01-10", timeZone: "Pacific/Honolulu", anchor: 1 });
    // Both cycles end on 2026-02-01 (local): by the start of 2026-01-31, neither has.
    expect((await runInvoicing([kiritimati, honolulu], { date: "2026-01-31" })).offices).toEqual([]);
    const run = await runInvoicing([kiritimati, honolulu], { date: "2026-02-01" });
    expect(run.offices.map((o) => o.invoices.map((i) => i.periodStart))).toEqual([["2026-01-01"], ["2026-01-01"]]);
  });

  it("catches up every missed cycle up to the date, and none after it", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", timeZone: "Europe/Berlin", plan: { baseFee: 1000 } });
    await runInvoicing([office], { date: "2026-03-31" });
    expect((await monthlyInvoices(office)).map((i) => [i.periodStart, i.status])).toEqual([
      ["2026-01-01", "open"],
      ["2026-02-01", "open"],
      ["2026-03-01", "draft"],
    ]);
  });

  it("accepts today, and refuses a date that has not begun anywhere with the reason", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    const today = new Date().toISOString().slice(0, 10);
    await runInvoicing([office], { date: today }, true);
    const tooLate = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    const res = await SELF.fetch("https://billing.test/v1/admin/invoicing-runs", {
      method: "POST",
      headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
      body: JSON.stringify({ date: tooLate, officeIds: [office] }),
    });
    const problem = await expectProblem(res, 400, "VALIDATION_FAILED");
    expect(problem.detail).toContain(`${tooLate} has not begun in any time zone yet`);
  });
});

describe("events and cycle boundaries", () => {
  it("an activation that arrives after a later deactivation of the same cycle is still billed", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    await reportEvent(office, "oo", "deactivate", "2026-01-20T10:00:00Z");
    const late = await reportEvent(office, "oo", "activate", "2026-01-10T10:00:00Z");
    expect(late).toMatchObject({ applied: false, active: false });
    expect(patientsLine((await monthlyInvoices(office))[0]!).quantity).toBe(1);
  });

  it("an activation after the cycle's end but before its close counts in the next cycle, not the ended one", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    await reportEvent(office, "after", "activate", "2026-02-01T05:30:00Z"); // Feb 1, 00:30 in New York
    expect(patientsLine((await monthlyInvoices(office))[0]!).quantity).toBe(0);
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    const [jan, feb] = await monthlyInvoices(office);
    expect(patientsLine(jan!).quantity).toBe(0);
    expect(patientsLine(feb!).quantity).toBe(1);
  });

  it("a run cannot close cycles that have not ended (no date or instant in the future)", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    const res = await SELF.fetch("https://billing.test/v1/admin/invoicing-runs", {
      method: "POST",
      headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
      body: JSON.stringify({ at: new Date(Date.now() + 86_400_000).toISOString(), officeIds: [office] }),
    });
    await expectProblem(res, 400, "VALIDATION_FAILED");
  });

  it("activate–deactivate–activate across a boundary: billed in both cycles, once each", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    await reportEvent(office, "x", "activate", "2026-01-10T10:00:00Z");
    await reportEvent(office, "x", "deactivate", "2026-01-31T20:00:00Z");
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    let [jan, feb] = await monthlyInvoices(office);
    expect(patientsLine(jan!).quantity).toBe(1);
    expect(patientsLine(feb!).quantity).toBe(0); // deactivated: not carried in
    await reportEvent(office, "x", "activate", "2026-02-03T10:00:00Z");
    await reportEvent(office, "x", "deactivate", "2026-02-04T10:00:00Z");
    await reportEvent(office, "x", "activate", "2026-02-05T10:00:00Z");
    [jan, feb] = await monthlyInvoices(office);
    expect(patientsLine(feb!).quantity).toBe(1);
    expect(patientsLine(jan!).quantity).toBe(1);
  });

  it("an event whose time lies in a closed cycle never changes the closed invoice (§5.7)", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    await reportEvent(office, "carried", "activate", "2026-01-05T10:00:00Z");
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    // The close hands January to the Stripe outbox: let that push finish before the snapshot.
    await syncStripe(office);
    const janBefore = (await monthlyInvoices(office))[0]!;
    // A late activation dated January: counted in February (active at its start), January untouched.
    await reportEvent(office, "late", "activate", "2026-01-20T10:00:00Z");
    // A late deactivation dated January for a patient only carried into February: removed from it.
    await reportEvent(office, "carried", "deactivate", "2026-01-25T10:00:00Z");
    const [jan, feb] = await monthlyInvoices(office);
    expect(jan).toEqual(janBefore);
    expect(patientsLine(feb!).quantity).toBe(1);
    expect(patientsLine(feb!).amount).toBe(800);
  });

  it("a trial ending mid-cycle bills the base fee from that day, and the office turns active at the close", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 4900, trialDays: 40 } });
    await reportEvent(office, "t1", "activate", "2026-01-03T10:00:00Z");
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    const [jan, feb] = await monthlyInvoices(office);
    expect(jan).toMatchObject({ inTrial: true, total: 0, status: "paid" }); // wholly in the trial
    // The trial covers Jan 1 – Feb 9 (40 days); Feb 10–28 is billed: 19 of 28 days → 4900 × 19 / 28 = 3325.
    expect(feb).toMatchObject({ inTrial: false });
    expect(baseLine(feb!)!.amount).toBe(3325);
    expect(patientsLine(feb!)).toMatchObject({ quantity: 1, amount: 800 });
    const status = async () => (await testDb().select({ status: offices.status }).from(offices).where(eq(offices.id, office)))[0]!.status;
    expect(await status()).toBe("trialing"); // the trial runs until Feb 10
    // Active only inside the trial's part of February: not billed for February.
    await reportEvent(office, "t2", "activate", "2026-02-02T10:00:00Z");
    await reportEvent(office, "t2", "deactivate", "2026-02-05T10:00:00Z");
    // Active across the trial's end: billed.
    await reportEvent(office, "t3", "activate", "2026-02-06T10:00:00Z");
    await runInvoicing([office], "2026-03-01T06:00:00Z");
    expect(await status()).toBe("active");
    const closedFeb = (await monthlyInvoices(office))[1]!;
    expect(patientsLine(closedFeb)).toMatchObject({ quantity: 2, amount: 1600 }); // t1 and t3
    expect(closedFeb).toMatchObject({ status: "open", total: 1600 + 3325 });
  });
});

describe("every cycle is billed from the event history (§5.3, issue 13)", () => {
  it("a catch-up close over two missed cycles bills exactly the patients active in each", async () => {
    // payment-plan.md §5, first worked example: September's and October's closes did not run.
    const office = await onboardOffice({ startsOn: "2026-08-01", plan: { baseFee: 0 } });
    await reportEvent(office, "A", "activate", "2026-08-20T10:00:00Z");
    await runInvoicing([office], "2026-09-01T06:00:00Z"); // August closes on time
    await reportEvent(office, "B", "activate", "2026-09-04T10:00:00Z");
    await reportEvent(office, "B", "deactivate", "2026-10-10T10:00:00Z");
    await reportEvent(office, "C", "activate", "2026-10-12T10:00:00Z"); // entirely inside missed October
    await reportEvent(office, "C", "deactivate", "2026-10-14T10:00:00Z");
    await reportEvent(office, "D", "activate", "2026-11-05T10:00:00Z"); // after both missed cycles
    const run = await runInvoicing([office], "2026-11-10T12:00:00Z");
    expect(run.offices[0]!.invoices.map((i) => [i.periodStart, i.total])).toEqual([
      ["2026-09-01", 1600],
      ["2026-10-01", 2400],
    ]);
    const [, sep, oct, nov] = await monthlyInvoices(office);
    expect(sep).toMatchObject({ periodStart: "2026-09-01", status: "open", total: 1600 });
    expect(patientsLine(sep!)).toMatchObject({ quantity: 2, amount: 1600 }); // A, B
    expect(oct).toMatchObject({ periodStart: "2026-10-01", status: "open", total: 2400 });
    expect(patientsLine(oct!)).toMatchObject({ quantity: 3, amount: 2400 }); // A, B (Oct 1–10), C — not D
    expect(nov).toMatchObject({ periodStart: "2026-11-01", status: "draft" });
    expect(patientsLine(nov!)).toMatchObject({ quantity: 2, amount: 1600 }); // A, D
    // Exactly once: running again changes nothing.
    await runInvoicing([office], "2026-11-10T13:00:00Z");
    expect((await monthlyInvoices(office)).map((i) => [i.periodStart, i.status, i.total])).toEqual([
      ["2026-08-01", "open", 800],
      ["2026-09-01", "open", 1600],
      ["2026-10-01", "open", 2400],
      ["2026-11-01", "draft", 1600],
    ]);
  });

  it("does not overbill a missed cycle for a patient first activated after it", async () => {
    const office = await onboardOffice({ startsOn: "2026-08-01", plan: { baseFee: 0 } });
    await reportEvent(office, "late-start", "activate", "2026-11-05T10:00:00Z");
    await runInvoicing([office], "2026-11-10T12:00:00Z");
    const all = await monthlyInvoices(office);
    expect(all.map((i) => [i.periodStart, patientsLine(i).quantity])).toEqual([
      ["2026-08-01", 0],
      ["2026-09-01", 0],
      ["2026-10-01", 0],
      ["2026-11-01", 1],
    ]);
  });

  it("bills October for a patient active Sep 4 – Oct 10, though inactive when the catch-up runs", async () => {
    const office = await onboardOffice({ startsOn: "2026-09-01", plan: { baseFee: 0 } });
    await reportEvent(office, "sep4", "activate", "2026-09-04T10:00:00Z");
    await reportEvent(office, "sep4", "deactivate", "2026-10-10T10:00:00Z");
    await runInvoicing([office], "2026-11-10T12:00:00Z");
    const [sep, oct, nov] = await monthlyInvoices(office);
    expect(patientsLine(sep!)).toMatchObject({ quantity: 1, amount: 800 });
    expect(patientsLine(oct!)).toMatchObject({ quantity: 1, amount: 800 });
    expect(patientsLine(nov!)).toMatchObject({ quantity: 0, amount: 0 });
  });

  it("one hour on a cycle's first day, reported before the previous cycle closed, is billed in that cycle", async () => {
    const office = await onboardOffice({ startsOn: "2026-07-01", plan: { baseFee: 0 } });
    // Aug 1 01:00–02:00 in New York; August starts at 04:00Z. Both reported before July's (late) close.
    await reportEvent(office, "hour", "activate", "2026-08-01T05:00:00Z");
    await reportEvent(office, "hour", "deactivate", "2026-08-01T06:00:00Z");
    await runInvoicing([office], "2026-08-01T07:00:00Z");
    let [jul, aug] = await monthlyInvoices(office);
    expect(patientsLine(jul!).quantity).toBe(0);
    expect(patientsLine(aug!).quantity).toBe(1); // counted in August's draft when it opens
    await runInvoicing([office], "2026-09-01T05:00:00Z");
    [jul, aug] = await monthlyInvoices(office);
    expect(aug).toMatchObject({ status: "open", total: 800 });
    expect(patientsLine(aug!)).toMatchObject({ quantity: 1, amount: 800 });
  });

  it("an activation and a deactivation at one instant: the deactivation stands, whatever the arrival order", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 0 } });
    await reportEvent(office, "tie", "activate", "2026-01-05T10:00:00Z");
    expect(await reportEvent(office, "tie", "deactivate", "2026-01-10T10:00:00Z")).toMatchObject({ active: false });
    expect(await reportEvent(office, "tie", "activate", "2026-01-10T10:00:00Z")).toMatchObject({ applied: false, active: false });
    await runInvoicing([office], "2026-02-01T06:00:00Z");
    const [jan, feb] = await monthlyInvoices(office);
    expect(patientsLine(jan!).quantity).toBe(1); // active Jan 5–10
    expect(patientsLine(feb!).quantity).toBe(0);
  });
});

describe("the close's database round trips", () => {
  /**
   * Calls the office object's close directly, counting the requests its database client sends
   * while the close runs in the object's operation queue (the Stripe outbox it arms afterwards
   * runs on its own, in the alarm).
   */
  async function closeCountingRoundTrips(officeId: string, at: string) {
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
    // The Stripe outbox armed by earlier operations runs first, so its reads are not counted.
    await runDurableObjectAlarm(stub);
    return runInDurableObject(stub, async (instance: OfficeBilling) => {
      const target = instance as unknown as { exclusive: (...args: unknown[]) => Promise<unknown> };
      const exclusive = target.exclusive;
      let counting = false;
      target.exclusive = async (...args: unknown[]) => {
        const [office, name, fn] = args as [string, string, () => Promise<unknown>];
        return exclusive.call(instance, office, name, async () => {
          counting = true;
          try {
            return await fn();
          } finally {
            counting = false;
          }
        });
      };
      const db = countDbRoundTrips(() => counting);
      try {
        const result = await instance.closeCycles(officeId, Date.parse(at), { actorSub: "test", actorRole: "system", requestId: "rt-test" });
        return { trips: db.trips, result };
      } finally {
        db.restore();
        target.exclusive = exclusive;
      }
    });
  }

  it("takes at most 2 round trips whatever the number of cycles caught up (1 when nothing is due)", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01", plan: { baseFee: 1000 } });
    for (const [p, on, off] of [["r1", "2026-01-03", null], ["r2", "2026-02-10", "2026-04-02"], ["r3", "2026-05-20", "2026-05-21"]] as const) {
      await reportEvent(office, p, "activate", `${on}T12:00:00Z`);
      if (off) await reportEvent(office, p, "deactivate", `${off}T12:00:00Z`);
    }
    const idle = await closeCountingRoundTrips(office, "2026-01-20T00:00:00Z");
    expect(idle.result).toMatchObject({ ok: true, value: { closed: [] } });
    expect(idle.trips).toBe(1);
    const caughtUp = await closeCountingRoundTrips(office, "2026-06-15T00:00:00Z");
    expect(caughtUp.result.ok).toBe(true);
    const closed = caughtUp.result.ok ? caughtUp.result.value.closed : [];
    // Jan {r1}, Feb {r1,r2}, Mar {r1,r2}, Apr {r1,r2}, May {r1,r3}: five cycles, one write.
    expect(closed.map((c) => [c.periodStart, c.total])).toEqual([
      ["2026-01-01", 1800],
      ["2026-02-01", 2600],
      ["2026-03-01", 2600],
      ["2026-04-01", 2600],
      ["2026-05-01", 2600],
    ]);
    expect(caughtUp.trips).toBe(2);
    const all = await monthlyInvoices(office);
    expect(all.map((i) => [i.periodStart, i.status, i.total])).toEqual([
      ["2026-01-01", "open", 1800],
      ["2026-02-01", "open", 2600],
      ["2026-03-01", "open", 2600],
      ["2026-04-01", "open", 2600],
      ["2026-05-01", "open", 2600],
      ["2026-06-01", "draft", 1800],
    ]);
  });
});
