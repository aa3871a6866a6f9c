import { eq, sql } from "drizzle-orm";
import { cycleContaining, startOfLocalDay, type LocalDate } from "../billing/calendar";
import { baseFeeFor, feeLineStart, lineDescriptions, trialEndDate, whollyInTrial } from "../billing/invoice";
import type { Database } from "../db/client";
import { retotalInvoice } from "../db/billing-sql";
import { invoiceLines, invoices } from "../db/invoices";
import { offices } from "../db/offices";
import type { planVersions } from "../db/plans";
import { newId } from "../security/request-id";

export type OnboardingInput = {
  legalName: string;
  billingEmail: string;
  timeZone: string;
  billingAnchorDay: number;
  /** The office's first local day (today in its zone unless given). */
  startsOn: LocalDate;
  planVersion: typeof planVersions.$inferSelect;
  /** Keyed by the client's Idempotency-Key: an office already onboarded here is a replay (or a conflict). */
  idempotent?: boolean;
};

/** True when an onboarded office is what this input would have made (a keyed retry). */
export function sameOnboarding(office: typeof offices.$inferSelect, input: OnboardingInput): boolean {
  return (
    office.legalName === input.legalName &&
    office.billingEmail === input.billingEmail &&
    office.timeZone === input.timeZone &&
    office.billingAnchorDay === input.billingAnchorDay &&
    office.billingStart === input.startsOn
  );
}

/**
 * The statements that onboard an office (docs/payment-plan.md §4, §6): the office in its first
 * cycle, that cycle's draft invoice (patients line and base-fee line), and, when the plan has a
 * setup fee, the setup-fee invoice finalized at once. One batch.
 */
/** `patientKeyVersion`: the current pseudonym version (a new office has no rows under an older one). */
export function onboardingStatements(db: Database, officeId: string, input: OnboardingInput, now: number, patientKeyVersion = 1) {
  const { planVersion: pv, timeZone: tz } = input;
  const cycle = cycleContaining(input.startsOn, input.billingAnchorDay);
  const trialEnd = trialEndDate(input.startsOn, pv.trialDays);
  const inTrial = whollyInTrial(cycle, trialEnd);
  const draftId = newId("inv");
  const setupId = newId("inv");
  const statements = [
    db.insert(offices).values({
      id: officeId,
      patientKeyVersion,
      legalName: input.legalName,
      billingEmail: input.billingEmail,
      timeZone: tz,
      billingAnchorDay: input.billingAnchorDay,
      planVersionId: pv.id,
      status: trialEnd ? "trialing" : "active",
      trialEndsAt: trialEnd ? startOfLocalDay(trialEnd, tz) : null,
      billingStart: input.startsOn,
      cycleStart: cycle.start,
      cycleEnd: cycle.end,
      cycleEndAt: startOfLocalDay(cycle.end, tz),
      updatedAt: now,
    }),
    db.insert(invoices).values({
      id: draftId,
      officeId,
      kind: "monthly",
      status: "draft",
      currency: pv.currency,
      periodStart: cycle.start,
      periodEnd: cycle.end,
      periodStartAt: startOfLocalDay(cycle.start, tz),
      periodEndAt: startOfLocalDay(cycle.end, tz),
      inTrial,
      planVersionId: pv.id,
      includedPatients: pv.includedPatients,
      updatedAt: now,
    }),
    db.insert(invoiceLines).values([
      { id: newId("il"), invoiceId: draftId, kind: "patients", description: lineDescriptions.patients(cycle.start), quantity: 0, amount: 0, periodStart: cycle.start, periodEnd: cycle.end, position: 0 },
      ...(pv.baseFee > 0
        ? [
            {
              id: newId("il"),
              invoiceId: draftId,
              kind: "base_fee" as const,
              description: lineDescriptions.baseFee(cycle.start),
              quantity: 1,
              amount: baseFeeFor(cycle, pv.baseFee, { officeStart: input.startsOn, trialEnd }),
              // A prorated first cycle's fee shows the days it bills (§6.5).
              periodStart: feeLineStart(cycle, { officeStart: input.startsOn, trialEnd }),
              periodEnd: cycle.end,
              position: 1,
            },
          ]
        : []),
    ]),
    db.run(retotalInvoice(draftId, now)),
    ...(pv.setupFee > 0
      ? [
          db.insert(invoices).values({
            id: setupId,
            officeId,
            kind: "setup",
            status: "open",
            currency: pv.currency,
            periodStart: input.startsOn,
            periodEnd: input.startsOn,
            periodStartAt: startOfLocalDay(input.startsOn, tz),
            periodEndAt: startOfLocalDay(input.startsOn, tz),
            planVersionId: pv.id,
            subtotal: pv.setupFee,
            total: pv.setupFee,
            finalizedAt: now,
            updatedAt: now,
          }),
          db.insert(invoiceLines).values({ id: newId("il"), invoiceId: setupId, kind: "setup_fee", description: lineDescriptions.setupFee(), quantity: 1, amount: pv.setupFee, position: 0 }),
        ]
      : []),
  ];
  return {
    statements,
    draftId,
    setupId: pv.setupFee > 0 ? setupId : null,
    reads: [db.select().from(offices).where(eq(offices.id, officeId)), db.select().from(invoices).where(sql`${invoices.officeId} = ${officeId}`)] as const,
  };
}
