import { minimumCharge } from "../billing/minimum";
import { eq, sql } from "drizzle-orm";
import { addDays, localDate, startOfLocalDay } from "../billing/calendar";
import { baseFeeFor, lineDescriptions, trimFeeLine } from "../billing/invoice";
import type { Database } from "../db/client";
import { repricePatientsLine, retotalInvoice } from "../db/billing-sql";
import { invoiceLines, invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { planVersions } from "../db/plans";
import { ApiError } from "../errors";
import { newId } from "../security/request-id";
import { tieredAmount } from "../billing/pricing";
import { clearDraftLines, tierLineStatements } from "./invoice-lines";

export type SubscriptionChange =
  | { type: "plan"; planVersionId: string; when: "next_cycle" | "immediately" }
  | { type: "cancel"; when: "period_end" | "immediately" }
  | { type: "resume" };

/** Round trip 1: the office, its draft with lines, and the plan versions involved. */
export function subscriptionReads(db: Database, officeId: string, change: SubscriptionChange) {
  const draft = sql`(SELECT id FROM invoices WHERE office_id = ${officeId} AND kind = 'monthly' AND status = 'draft')`;
  return [
    db.select().from(offices).where(eq(offices.id, officeId)),
    db.select().from(invoices).where(sql`${invoices.id} = ${draft}`),
    db.select().from(invoiceLines).where(sql`${invoiceLines.invoiceId} = ${draft}`),
    db
      .select()
      .from(planVersions)
      .where(
        sql`${planVersions.id} IN ((SELECT plan_version_id FROM offices WHERE id = ${officeId}), ${change.type === "plan" ? change.planVersionId : null})`,
      ),
  ] as const;
}

type State = {
  office: typeof offices.$inferSelect;
  draft: typeof invoices.$inferSelect | undefined;
  lines: (typeof invoiceLines.$inferSelect)[];
  versions: (typeof planVersions.$inferSelect)[];
};

/**
 * Round trip 2 (docs/payment-plan.md §4, §6.6): the statements of a plan change, a cancellation
 * or a resume, each guarded by a compare-and-set on the office row as read (`updated_at`).
 */
export function subscriptionStatements(db: Database, state: State, change: SubscriptionChange, now: number) {
  const { office, draft } = state;
  if (office.status === "canceled") throw new ApiError("CONFLICT", "The office's subscription is canceled.");
  // The office object is the only writer and read the office in this same operation.
  const guard = sql`${offices.id} = ${office.id}`;
  const today = localDate(now, office.timeZone);
  const trialEnd = office.trialEndsAt !== null ? localDate(office.trialEndsAt, office.timeZone) : null;
  const cycle = { start: office.cycleStart, end: office.cycleEnd };
  const statements = [];
  const opts = { officeStart: office.billingStart, trialEnd };
  /** Cuts every fee line (base fee, plan-change proration) that runs past `until`; one cut to 0 is removed (§6.8). */
  const cutFeeLines = (until: string) =>
    state.lines
      .filter((l) => (l.kind === "base_fee" || l.kind === "proration") && l.periodStart !== null && l.periodEnd !== null && l.periodEnd > until)
      .map((l) => {
        const kept = trimFeeLine({ amount: l.amount, periodStart: l.periodStart!, periodEnd: l.periodEnd! }, until, opts);
        return kept === 0
          ? db.run(sql`DELETE FROM ${invoiceLines} WHERE id = ${l.id}`)
          : db.run(sql`UPDATE ${invoiceLines} SET amount = ${kept}, period_end = ${until < l.periodStart! ? l.periodStart! : until} WHERE id = ${l.id}`);
      });

  if (change.type === "resume") {
    if (!office.cancelAtPeriodEnd) throw new ApiError("CONFLICT", "The subscription is not set to cancel.");
    statements.push(db.run(sql`UPDATE ${offices} SET cancel_at_period_end = 0, updated_at = ${now} WHERE ${guard}`));
  } else if (change.type === "cancel" && change.when === "period_end") {
    statements.push(db.run(sql`UPDATE ${offices} SET cancel_at_period_end = 1, updated_at = ${now} WHERE ${guard}`));
  } else if (change.type === "cancel") {
    // Cancel now: the draft is finalized with the fees for the days used, today included, and its
    // period ends with them (§6.9): at the end of the day of the cancellation, or the cycle's end.
    if (draft) {
      const until = [[addDays(today, 1), cycle.end].sort()[0]!, cycle.start].sort()[1]!;
      const version = state.versions.find((v) => v.id === (draft.planVersionId ?? office.planVersionId)) ?? state.versions.find((v) => v.id === office.planVersionId);
      if (!version) throw new Error("plan version of the draft not found");
      const billable = state.lines.find((l) => l.kind === "patients")?.quantity ?? 0;
      const tiers = tieredAmount(billable, version.tiers, version.includedPatients);
      const draftIsOpen = sql`EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${draft.id} AND ${invoices.status} = 'draft')`;
      statements.push(
        ...cutFeeLines(until),
        // The running count gives way to tier lines for the days used (§6.1), no zero-amount line.
        clearDraftLines(db, draft.id, draftIsOpen),
        ...(draft.inTrial ? [] : tierLineStatements(db, draft.id, { start: cycle.start, end: until }, tiers.tiers, version.includedPatients, draftIsOpen)),
        db.run(sql`UPDATE ${invoices} SET period_end = ${until}, period_end_at = ${startOfLocalDay(until, office.timeZone)} WHERE id = ${draft.id} AND status = 'draft' AND period_end > ${until}`),
        db.run(retotalInvoice(draft.id, now)),
        // No invoice follows a cancellation: a total below Stripe's minimum charge is written off (§8.9).
        db.run(sql`UPDATE ${invoices} SET status = CASE WHEN total = 0 THEN 'paid' WHEN total < ${minimumCharge(draft.currency)} THEN 'void' ELSE 'open' END,
          stripe_state = CASE WHEN total > 0 AND total < ${minimumCharge(draft.currency)} THEN 'written_off' ELSE stripe_state END, finalized_at = ${now},
          paid_at = CASE WHEN total = 0 THEN ${now} ELSE paid_at END,
          voided_at = CASE WHEN total > 0 AND total < ${minimumCharge(draft.currency)} THEN ${now} ELSE voided_at END, updated_at = ${now}
          WHERE id = ${draft.id} AND status = 'draft'`),
      );
    }
    statements.push(db.run(sql`UPDATE ${offices} SET status = 'canceled', canceled_at = ${now}, cancel_at_period_end = 0, updated_at = ${now} WHERE ${guard}`));
  } else if (change.when === "next_cycle") {
    statements.push(db.run(sql`UPDATE ${offices} SET pending_plan_version_id = ${change.planVersionId}, updated_at = ${now} WHERE ${guard}`));
  } else {
    // Immediately: each plan keeps the days it was billed for — the fee lines running past today
    // are cut there — and the new plan's fee runs from today; the patients line is repriced with
    // the new version, whose per-patient price applies when the cycle closes.
    const newVersion = state.versions.find((v) => v.id === change.planVersionId)!;
    if (!draft) throw new ApiError("CONFLICT", "The office has no open cycle.");
    if (newVersion.currency !== draft.currency) throw new ApiError("CONFLICT", "The new plan bills in another currency; change it for the next cycle instead.");
    const newPart = baseFeeFor(cycle, newVersion.baseFee, { ...opts, from: today });
    const patientsLine = sql`(SELECT id FROM ${invoiceLines} WHERE invoice_id = ${draft.id} AND kind = 'patients')`;
    statements.push(
      ...cutFeeLines(today),
      ...(newVersion.baseFee > 0
        ? [db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, amount, period_start, period_end, position)
            VALUES (${newId("il")}, ${draft.id}, 'proration', ${`${lineDescriptions.baseFee(cycle.start)} (plan change)`}, 1, ${newPart}, ${today}, ${cycle.end},
              (SELECT COALESCE(MAX(position), 0) + 1 FROM ${invoiceLines} WHERE invoice_id = ${draft.id}))`)]
        : []),
      db.run(sql`UPDATE ${invoices} SET plan_version_id = ${newVersion.id} WHERE id = ${draft.id} AND status = 'draft'`),
      db.run(repricePatientsLine(patientsLine)),
      db.run(retotalInvoice(draft.id, now)),
      db.run(sql`UPDATE ${offices} SET plan_version_id = ${newVersion.id}, pending_plan_version_id = NULL, updated_at = ${now} WHERE ${guard}`),
    );
  }
  return statements;
}
