import fc from "fast-check";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { dateArb, modelInvoices, scenarioArb, type Scenario } from "../harness/billing-model";
import { monthlyInvoices, onboardOffice, reportEvent, runInvoicing } from "../harness/billing";
import { testDb } from "../harness/seed";

/**
 * The wiring, through the real API, office object, database and close: generated offices (zones
 * with DST, anchors 1–31, tiers, allowances, trials), event histories (out of order, duplicated,
 * on cycle boundaries, at shared instants, reported late) and invoicing runs (on time, late,
 * catching up several cycles); every closed invoice must be what the reference model of
 * payment-plan.md §5.3 computes from scratch. Fewer cases than the in-process property
 * (tests/unit/billing/billable.property.test.ts): each one is a few seconds of real requests.
 * Seeded and reproducible; no shrinking (a failure reports its case as generated).
 */
const SEED = 13_2026;
const RUNS = 40;

/** Plays the scenario in time order: each event is reported before the runs that know it, the others after. */
async function play(s: Scenario) {
  const office = await onboardOffice({
    startsOn: s.office.startsOn,
    timeZone: s.office.timeZone,
    anchor: s.office.anchorDay,
    plan: { baseFee: s.office.plan.baseFee, tiers: s.office.plan.tiers, includedPatients: s.office.plan.includedPatients, trialDays: s.office.plan.trialDays },
  });
  const actions = [
    ...s.events.map((e) => ({ t: e.receivedAt, order: 0, run: async (keys: Map<string, string>) => keys.set(e.patient, (await reportEvent(office, e.patient, e.kind, new Date(e.at).toISOString())).patientKey) })),
    ...s.closeTimes.map((t) => ({ t, order: 1, run: async () => void (await runInvoicing([office], new Date(t).toISOString())) })),
  ].sort((a, b) => a.t - b.t || a.order - b.order);
  const keys = new Map<string, string>();
  for (const action of actions) await action.run(keys);
  return { office, keys };
}

async function closedInvoices(office: string) {
  const all = (await monthlyInvoices(office)).filter((i) => i.status !== "draft");
  const mapped = await testDb().all<{ invoice_id: string; patient_key: string }>(
    sql`SELECT m.invoice_id, m.patient_key FROM invoice_patients m
        JOIN invoices i ON i.id = m.invoice_id WHERE i.office_id = ${office} AND i.kind = 'monthly'`,
  );
  return all.map((inv) => {
    // The patients lines explain themselves (§6.1): quantity × unit price each, ranks above the
    // allowance, no zero-amount line, and together they charge every billable patient beyond it.
    const tiers = inv.lines.filter((l) => l.kind === "patients");
    for (const t of tiers) {
      expect(t.unitAmount).not.toBeNull();
      expect(t.amount).toBe(t.quantity * t.unitAmount!);
      expect(t.amount).toBeGreaterThan(0);
      expect(t.rankFrom).toBeGreaterThan(inv.includedPatients);
    }
    expect(inv.lines.every((l) => l.amount > 0)).toBe(true);
    if (!inv.inTrial) expect(tiers.reduce((n, t) => n + t.quantity, 0)).toBe(Math.max(0, inv.billablePatients - inv.includedPatients));
    return {
      start: inv.periodStart,
      end: inv.periodEnd,
      patients: mapped.filter((m) => m.invoice_id === inv.id).map((m) => m.patient_key).sort(),
      quantity: inv.billablePatients,
      patientsAmount: tiers.reduce((sum, t) => sum + t.amount, 0),
      baseFee: inv.lines.find((l) => l.kind === "base_fee")?.amount ?? 0,
      carriedIn: inv.lines.find((l) => l.kind === "carried_balance")?.amount ?? 0,
      total: inv.total,
      status: inv.status,
      carried: inv.stripeState === "carried",
    };
  });
}

describe("closed invoices through the API against the reference model (§5.3)", () => {
  it(`${RUNS} generated offices, histories and runs, end to end`, { timeout: 1_200_000 }, async () => {
    // 2026 (not 2025, which tests/worker/scheduled.test.ts keeps to itself: its cron scans every
    // office due by then), early enough that every run and event of 5 cycles lies in the past.
    const scenarios = scenarioArb({ startsOn: dateArb("2026-01-01", "2026-04-30"), maxCycles: 5, maxPatients: 4, maxEvents: 7, eventsFrom: "anytime" });
    // What the cases covered, so a generator gone trivial fails the test rather than passing it.
    const seen = { invoices: 0, billedPatients: 0, catchUps: 0, lateEvents: 0 };
    await fc.assert(
      fc.asyncProperty(scenarios, async (s) => {
        const { office, keys } = await play(s);
        const expected = modelInvoices(s.office, s.events, s.closeTimes).map((m) => ({
          start: m.cycle.start,
          end: m.cycle.end,
          patients: m.patients.map((p) => keys.get(p)!).sort(),
          quantity: m.patients.length,
          patientsAmount: m.patientsAmount,
          baseFee: m.baseFee,
          carriedIn: m.carriedIn,
          total: m.total,
          status: m.status,
          carried: m.carried,
        }));
        expect(await closedInvoices(office)).toEqual(expected);
        const closedAt = modelInvoices(s.office, s.events, s.closeTimes).map((m) => m.closedAt);
        seen.invoices += expected.length;
        seen.billedPatients += expected.reduce((n, e) => n + e.quantity, 0);
        seen.catchUps += closedAt.filter((t, i) => closedAt.indexOf(t) !== i).length;
        seen.lateEvents += s.events.filter((e) => closedAt.some((t) => e.at < t && e.receivedAt > t)).length;
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    expect(seen.invoices).toBeGreaterThan(RUNS);
    expect(seen.billedPatients).toBeGreaterThan(RUNS);
    expect(seen.catchUps).toBeGreaterThan(5);
    expect(seen.lateEvents).toBeGreaterThan(5);
  });
});
