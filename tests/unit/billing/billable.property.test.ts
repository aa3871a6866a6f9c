import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { billableIn, planClose, type PatientEvent } from "../../../src/billing/billable";
import { cycleContaining, startOfLocalDay, type Cycle } from "../../../src/billing/calendar";
import { baseFeeFor, trialEndDate } from "../../../src/billing/invoice";
import { dateArb, modelBillable, modelInvoices, scenarioArb, type ModelEvent, type Scenario } from "../../harness/billing-model";
import { settleRun } from "../../../src/billing/minimum";

/**
 * The close's computation (src/billing/billable.ts), run in-process exactly as the office object
 * runs it — each run gets the events received by then, filtered as its database read filters
 * them — against the reference model of payment-plan.md §5.3 (tests/harness/billing-model.ts).
 * Seeded: a failure prints its seed and path, and re-running reproduces it.
 */
const SEED = 13_2026;

/** The events the close reads (close-cycle.ts `closeReads`): from the draft's start, plus each patient's latest before it. */
function asRead(known: ModelEvent[], since: number): PatientEvent[] {
  const latestBefore = new Map<string, number>();
  for (const e of known) if (e.at < since) latestBefore.set(e.patient, Math.max(latestBefore.get(e.patient) ?? -Infinity, e.at));
  return known.filter((e) => e.at >= since || e.at === latestBefore.get(e.patient)).map((e) => ({ patientKey: e.patient, kind: e.kind, at: e.at }));
}

/** What the project invoices for each cycle its runs close. */
function projectInvoices({ office, events, closeTimes }: Scenario) {
  const tz = office.timeZone;
  const trialEnd = trialEndDate(office.startsOn, office.plan.trialDays);
  const version = { id: "v1", baseFee: office.plan.baseFee, tiers: office.plan.tiers, includedPatients: office.plan.includedPatients };
  let cycle: Cycle = cycleContaining(office.startsOn, office.anchorDay);
  let status = trialEnd ? "trialing" : "active";
  let draftBaseFee = baseFeeFor(cycle, office.plan.baseFee, { officeStart: office.startsOn, trialEnd });
  const invoices: { start: string; end: string; patients: string[]; patientsAmount: number; baseFee: number; total: number; closedAt: number }[] = [];
  for (const at of closeTimes) {
    if (startOfLocalDay(cycle.end, tz) > at) continue;
    const known = events.filter((e) => e.receivedAt <= at);
    const outcome = planClose({
      timeZone: tz,
      anchorDay: office.anchorDay,
      cycle,
      status,
      trialEndsAt: trialEnd ? startOfLocalDay(trialEnd, tz) : null,
      cancelAtPeriodEnd: false,
      draftVersion: version,
      nextVersion: version,
      at,
      events: asRead(known, startOfLocalDay(cycle.start, tz)),
    });
    outcome.closed.forEach((bill, i) => {
      const baseFee = i === 0 ? draftBaseFee : bill.baseFee;
      invoices.push({ start: bill.cycle.start, end: bill.cycle.end, patients: bill.patientKeys, patientsAmount: bill.patientsAmount, baseFee, total: bill.patientsAmount + baseFee, closedAt: at });
    });
    cycle = outcome.open!.cycle;
    draftBaseFee = outcome.open!.baseFee;
    status = outcome.status;
  }
  // §8.9: each close settles its invoices against Stripe's minimum charge, a carry landing on the
  // next invoice (the draft's carried line is part of its total at its own close): over the whole
  // run that is one chain in close order, a draft always following the last.
  const settled = settleRun(
    invoices.map((inv) => inv.total),
    "usd",
    true,
  );
  return invoices.map((inv, i) => {
    const { closedAt, ...rest } = inv;
    const s = settled[i]!;
    return { ...rest, carriedIn: s.carriedIn, total: s.total, status: s.settlement === "collect" ? "open" : s.settlement === "write_off" ? "void" : "paid", carried: s.settlement === "carry", closedAt };
  });
}

const modelView = (s: Scenario) =>
  modelInvoices(s.office, s.events, s.closeTimes).map((m) => ({
    start: m.cycle.start,
    end: m.cycle.end,
    patients: m.patients,
    patientsAmount: m.patientsAmount,
    baseFee: m.baseFee,
    carriedIn: m.carriedIn,
    total: m.total,
    status: m.status,
    carried: m.carried,
    closedAt: m.closedAt,
  }));

describe("the close against the reference model of the billable rule (§5.3)", () => {
  it("bills every closed cycle as the model does: 3,000 generated offices, histories and runs", { timeout: 600_000 }, async () => {
    const scenarios = scenarioArb({ startsOn: dateArb("2024-01-01", "2027-12-31"), maxCycles: 8, maxPatients: 6, maxEvents: 14, eventsFrom: "anytime" });
    let runs = 0;
    const seen = { invoices: 0, billedPatients: 0, catchUps: 0, trialCycles: 0, carried: 0 };
    await fc.assert(
      fc.asyncProperty(scenarios, async (s) => {
        // Let the runtime breathe now and then: thousands of synchronous cases starve its RPC.
        if (++runs % 50 === 0) await new Promise((r) => setTimeout(r, 0));
        const expected = modelView(s);
        expect(projectInvoices(s)).toEqual(expected);
        seen.invoices += expected.length;
        seen.billedPatients += expected.reduce((n, e) => n + e.patients.length, 0);
        seen.catchUps += expected.filter((e, i) => expected.findIndex((o) => o.closedAt === e.closedAt) !== i).length;
        seen.trialCycles += s.office.plan.trialDays > 0 ? 1 : 0;
        seen.carried += expected.filter((e) => e.carried).length;
      }),
      { seed: SEED, numRuns: 3_000 },
    );
    // What the cases covered, so a generator gone trivial fails the test rather than passing it.
    expect(seen.invoices).toBeGreaterThan(3_000);
    expect(seen.billedPatients).toBeGreaterThan(3_000);
    expect(seen.catchUps).toBeGreaterThan(500);
    expect(seen.trialCycles).toBeGreaterThan(300);
    expect(seen.carried).toBeGreaterThan(20); // §8.9: totals below the minimum charge, carried on
  });

  it("billableIn agrees with the model on arbitrary windows, ties and duplicates", { timeout: 120_000 }, () => {
    const event = fc.record({
      patient: fc.constantFrom("a", "b", "c"),
      kind: fc.constantFrom("activate" as const, "deactivate" as const),
      at: fc.integer({ min: 0, max: 12 }),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 12 }), fc.integer({ min: -1, max: 13 }), fc.integer({ min: 0, max: 6 }), (raw, from, length) => {
        const events = raw.map((e) => ({ ...e, receivedAt: 0 }));
        const ours = billableIn(
          events.map((e) => ({ patientKey: e.patient, kind: e.kind, at: e.at })),
          [{ from, to: from + length }],
        )[0];
        expect(ours).toEqual(length === 0 ? [] : modelBillable(events, from, from + length));
      }),
      { seed: SEED, numRuns: 5_000 },
    );
  });
});
