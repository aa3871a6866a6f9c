import { eq, or, sql } from "drizzle-orm";
import { discountsFor, type CouponTerms, type OpenDiscount } from "../billing/discounts";
import { coupons, officeDiscounts } from "../db/discounts";
import { planClose, type CycleBill, type PatientEvent, type PricedVersion } from "../billing/billable";
import { localDate, type Cycle } from "../billing/calendar";
import { feeLineStart, lineDescriptions } from "../billing/invoice";
import { settleRun, type Settlement } from "../billing/minimum";
import { clearDraftLines, tierLineStatements } from "./invoice-lines";
import type { Database } from "../db/client";
import { retotalInvoice } from "../db/billing-sql";
import { invoiceLines, invoicePatients, invoices } from "../db/invoices";
import { offices, type OfficeStatus } from "../db/offices";
import { patientEvents } from "../db/patients";
import { planVersions } from "../db/plans";
import { newId } from "../security/request-id";

/**
 * Round trip 1 of a close: the office, its draft and the draft's lines, the plan versions it may
 * be priced with, and the patient events the rule needs (docs/payment-plan.md §5.3, §6.3): every
 * event dated from the draft's start, and each patient's latest events before it.
 */
export function closeReads(db: Database, officeId: string) {
  const draft = sql`(SELECT id FROM ${invoices} WHERE office_id = ${officeId} AND kind = 'monthly' AND status = 'draft')`;
  const since = sql`(SELECT period_start_at FROM ${invoices} WHERE id = ${draft})`;
  return [
    db.select().from(offices).where(eq(offices.id, officeId)),
    db.select().from(invoices).where(sql`${invoices.officeId} = ${officeId} AND ${invoices.kind} = 'monthly' AND ${invoices.status} = 'draft'`),
    db
      .select()
      .from(planVersions)
      .where(
        or(
          sql`${planVersions.id} = (SELECT ${offices.planVersionId} FROM ${offices} WHERE ${offices.id} = ${officeId})`,
          sql`${planVersions.id} = (SELECT ${offices.pendingPlanVersionId} FROM ${offices} WHERE ${offices.id} = ${officeId})`,
          sql`${planVersions.id} = (SELECT plan_version_id FROM ${invoices} WHERE id = ${draft})`,
        ),
      ),
    db.select({ kind: invoiceLines.kind, amount: invoiceLines.amount }).from(invoiceLines).where(sql`${invoiceLines.invoiceId} = ${draft}`),
    db
      .select({ patientKey: patientEvents.patientKey, kind: patientEvents.kind, at: patientEvents.eventAt })
      .from(patientEvents)
      .where(
        sql`${patientEvents.officeId} = ${officeId} AND (${patientEvents.eventAt} >= ${since} OR ${patientEvents.eventAt} = (SELECT MAX(e.event_at) FROM ${patientEvents} e
          WHERE e.office_id = ${officeId} AND e.patient_key = ${patientEvents.patientKey} AND e.event_at < ${since}))`,
      ),
    db
      .select({ id: officeDiscounts.id, invoicesUsed: officeDiscounts.invoicesUsed, percentOff: coupons.percentOff, amountOff: coupons.amountOff, duration: coupons.duration, durationCycles: coupons.durationCycles })
      .from(officeDiscounts)
      .innerJoin(coupons, eq(coupons.id, officeDiscounts.couponId))
      .where(sql`${officeDiscounts.officeId} = ${officeId} AND ${officeDiscounts.endedAt} IS NULL`),
  ] as const;
}

export type CloseState = {
  office: typeof offices.$inferSelect;
  draft: typeof invoices.$inferSelect;
  versions: (typeof planVersions.$inferSelect)[];
  draftLines: { kind: string; amount: number }[];
  events: PatientEvent[];
  /** The office's open discount (§6.10), if any. */
  discount: OpenDiscount | null;
};

export type ClosedBill = CycleBill & {
  invoiceId: string;
  total: number;
  nextInvoiceId: string | null;
  /** Below Stripe's minimum charge: `carry` (to `nextInvoiceId`) or `write_off`; else `zero` / `collect` (§8.9). */
  settlement: Settlement;
  /** What an earlier invoice below the minimum carried into this one (part of `total`). */
  carriedIn: number;
  /** The discount line's amount (≤ 0; 0: none), §6.10. */
  discount: number;
};

export type ClosePlan = {
  closed: ClosedBill[];
  opened: (CycleBill & { invoiceId: string }) | null;
  status: OfficeStatus;
  statements: ReturnType<Database["run"]>[];
  /** The condition that holds inside the batch only if this close finalized the office's draft. */
  finalizedByThisClose: ReturnType<typeof sql>;
};

/** Rows per multi-row insert of patient keys (one bound parameter each). */
const KEYS_PER_INSERT = 400;

const priced = (v: typeof planVersions.$inferSelect): PricedVersion => ({ id: v.id, baseFee: v.baseFee, tiers: v.tiers, includedPatients: v.includedPatients });

/**
 * Round trip 2 of a close (docs/payment-plan.md §6.3), as one batch whatever the number of
 * cycles caught up. `planClose` computes every ended cycle from the events (each on its own
 * window) and the cycle it opens; the batch finalizes the draft with its recomputed patients line
 * (a compare-and-set on its status; `paid` when its total is 0), inserts each missed cycle's
 * invoice already finalized, opens the current cycle's draft (unless the office cancels at period
 * end), and moves the office on with any pending plan; the caller's audit entries ride along.
 * Everything after the compare-and-set depends on it: run twice, the second run changes nothing.
 */
export function closeStatements(db: Database, state: CloseState, at: number, now: number): ClosePlan {
  const { office, draft } = state;
  const version = (id: string | null) => state.versions.find((v) => v.id === id);
  const nextVersion = version(office.pendingPlanVersionId ?? office.planVersionId);
  const draftVersion = version(draft.planVersionId ?? office.planVersionId) ?? version(office.planVersionId);
  if (!nextVersion || !draftVersion) throw new Error("plan version of the close not found");
  const outcome = planClose({
    timeZone: office.timeZone,
    anchorDay: office.billingAnchorDay,
    cycle: { start: office.cycleStart, end: office.cycleEnd },
    status: office.status,
    trialEndsAt: office.trialEndsAt,
    cancelAtPeriodEnd: office.cancelAtPeriodEnd,
    draftVersion: priced(draftVersion),
    nextVersion: priced(nextVersion),
    at,
    events: state.events,
    pending: office.pendingTimeZone !== null || office.pendingAnchorDay !== null ? { timeZone: office.pendingTimeZone ?? office.timeZone, anchorDay: office.pendingAnchorDay ?? office.billingAnchorDay } : null,
  });
  if (outcome.closed.length === 0) throw new Error("nothing to close");
  const currency = nextVersion.currency;
  const finalizedByThisClose = sql`EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${draft.id} AND ${invoices.finalizedAt} = ${now})`;
  const statements: ReturnType<Database["run"]>[] = [];
  const mapKeys = (invoiceId: string, keys: string[], when: ReturnType<typeof sql>) => {
    for (let i = 0; i < keys.length; i += KEYS_PER_INSERT) {
      const values = sql.join(
        keys.slice(i, i + KEYS_PER_INSERT).map((k) => sql`(${k})`),
        sql`, `,
      );
      statements.push(
        db.run(sql`INSERT INTO ${invoicePatients} (invoice_id, office_id, patient_key, counted_at)
          SELECT ${invoiceId}, ${office.id}, v.column1, ${now} FROM (VALUES ${values}) v WHERE ${when}`),
      );
    }
  };
  const tierLines = (invoiceId: string, bill: CycleBill, when: ReturnType<typeof sql>) =>
    statements.push(...tierLineStatements(db, invoiceId, bill.cycle, bill.tiers, bill.includedPatients, when));
  const trialEnd = office.trialEndsAt !== null ? localDate(office.trialEndsAt, outcome.settings.timeZone) : null;

  // 1. The draft: its patients lines are the rule's answer for its cycle, priced with its version;
  // its running count gives way to the tier lines, and no zero-amount line is kept (§6.1).
  const [first, ...missed] = outcome.closed as [CycleBill, ...CycleBill[]];
  const draftIsOpen = sql`EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${draft.id} AND ${invoices.status} = 'draft')`;
  const firstBill = draft.inTrial ? { ...first, tiers: [], patientsAmount: 0 } : first;
  statements.push(db.run(sql`DELETE FROM ${invoicePatients} WHERE invoice_id = ${draft.id} AND ${draftIsOpen}`));
  mapKeys(draft.id, first.patientKeys, draftIsOpen);
  statements.push(clearDraftLines(db, draft.id, draftIsOpen));
  tierLines(draft.id, firstBill, draftIsOpen);
  // The discount comes after every other rule (§6.10), on each closed invoice's own subtotal —
  // never on a balance carried into it from an invoice below the minimum charge (§8.9).
  const firstSubtotal =
    state.draftLines.filter((l) => l.kind !== "patients" && l.kind !== "discount" && l.kind !== "carried_balance").reduce((sum, l) => sum + l.amount, 0) + firstBill.patientsAmount;
  const discounts = discountsFor(state.discount, [firstSubtotal, ...missed.map((b) => b.patientsAmount + b.baseFee)]);
  const discountLine = (invoiceId: string, cycle: CycleBill["cycle"], amount: number, when: ReturnType<typeof sql>) =>
    db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, amount, period_start, period_end, position)
      SELECT ${newId("il")}, ${invoiceId}, 'discount', ${lineDescriptions.discount(cycle.start)}, 1, ${amount}, ${cycle.start}, ${cycle.end},
        (SELECT COALESCE(MAX(position), 0) + 1000 FROM ${invoiceLines} WHERE invoice_id = ${invoiceId}) WHERE ${when}`);
  if (discounts.amounts[0]! < 0) statements.push(discountLine(draft.id, first.cycle, discounts.amounts[0]!, draftIsOpen));
  const draftCarriedIn = state.draftLines.filter((l) => l.kind === "carried_balance").reduce((sum, l) => sum + l.amount, 0);
  const firstTotal = firstSubtotal + discounts.amounts[0]! + draftCarriedIn;

  // Below Stripe's minimum charge (§8.9): an invoice's total (after its discount) is carried to the
  // office's next invoice in the same currency — the next missed cycle's or the draft this close
  // opens — as a line of its own; with no next invoice it is written off. Never sent to Stripe either way.
  const missedOwn = missed.map((bill, i) => bill.patientsAmount + bill.baseFee + discounts.amounts[i + 1]!);
  const settled =
    draft.currency === currency
      ? settleRun([firstTotal, ...missedOwn], currency, outcome.open !== null)
      : [...settleRun([firstTotal], draft.currency, false), ...settleRun(missedOwn, currency, outcome.open !== null)];
  const carriedInto = (i: number) => (settled[i - 1]?.settlement === "carry" ? settled[i - 1]!.total : 0);
  const cycleOf = (i: number) => (i === 0 ? first.cycle : missed[i - 1]!.cycle);
  const finalState = (s: Settlement) =>
    s === "collect" ? { status: "open", stripeState: "none" } : s === "write_off" ? { status: "void", stripeState: "written_off" } : { status: "paid", stripeState: s === "carry" ? "carried" : "none" };
  const draftFinal = finalState(settled[0]!.settlement);
  statements.push(
    db.run(sql`UPDATE ${invoices} SET billable_patients = ${first.quantity}, included_patients = ${first.includedPatients} WHERE id = ${draft.id} AND status = 'draft'`),
    db.run(retotalInvoice(draft.id, now)),
    db.run(sql`UPDATE ${invoices} SET status = ${draftFinal.status}, stripe_state = ${draftFinal.stripeState}, finalized_at = ${now},
      paid_at = CASE WHEN ${draftFinal.status} = 'paid' THEN ${now} ELSE paid_at END,
      voided_at = CASE WHEN ${draftFinal.status} = 'void' THEN ${now} ELSE voided_at END, updated_at = ${now}
      WHERE id = ${draft.id} AND status = 'draft'`),
  );

  // 2. Each missed cycle, finalized at once, then the open cycle's draft: all only if step 1 ran.
  // `index`: the invoice's place in the run of closed invoices (the draft is 0; the open draft last).
  const insertInvoice = (bill: CycleBill, finalize: boolean, index: number, discount = 0) => {
    const id = newId("inv");
    const carriedIn = carriedInto(index);
    const total = bill.patientsAmount + bill.baseFee + discount + carriedIn;
    const final = finalize ? finalState(settled[index]!.settlement) : { status: "draft", stripeState: "none" };
    const status = final.status;
    const exists = sql`EXISTS (SELECT 1 FROM ${invoices} WHERE ${invoices.id} = ${id})`;
    statements.push(
      db.run(sql`INSERT INTO ${invoices} (id, office_id, kind, status, currency, period_start, period_end, period_start_at, period_end_at, in_trial, plan_version_id,
          billable_patients, included_patients, subtotal, total, stripe_state, finalized_at, paid_at, voided_at, updated_at)
        SELECT ${id}, ${office.id}, 'monthly', ${status}, ${currency}, ${bill.cycle.start}, ${bill.cycle.end}, ${bill.startAt}, ${bill.endAt}, ${bill.inTrial ? 1 : 0}, ${bill.versionId},
          ${bill.quantity}, ${bill.includedPatients}, ${total}, ${total}, ${final.stripeState}, ${finalize ? now : null}, ${status === "paid" ? now : null}, ${status === "void" ? now : null}, ${now}
        WHERE ${finalizedByThisClose}`),
    );
    if (carriedIn > 0) {
      const from = cycleOf(index - 1);
      statements.push(
        db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, amount, period_start, period_end, position)
          SELECT ${newId("il")}, ${id}, 'carried_balance', ${lineDescriptions.carriedBalance(from.start)}, 1, ${carriedIn}, ${from.start}, ${from.end}, 2 WHERE ${exists}`),
      );
    }
    if (finalize) tierLines(id, bill, exists);
    else {
      // The open cycle's draft keeps a running count until its own close.
      statements.push(
        db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, amount, period_start, period_end, position)
          SELECT ${newId("il")}, ${id}, 'patients', ${lineDescriptions.patients(bill.cycle.start)}, ${bill.quantity}, ${bill.patientsAmount}, ${bill.cycle.start}, ${bill.cycle.end}, 0 WHERE ${exists}`),
      );
    }
    // The draft keeps its fee line even at 0 (a plan change may reprice it); a finalized invoice
    // has no zero-amount line. A fee prorated by a trial's end shows the days it bills.
    if (nextVersion.baseFee > 0 && (!finalize || bill.baseFee > 0)) {
      const feeStart = feeLineStart(bill.cycle, { officeStart: bill.cycle.start, trialEnd });
      statements.push(
        db.run(sql`INSERT INTO ${invoiceLines} (id, invoice_id, kind, description, quantity, amount, period_start, period_end, position)
          SELECT ${newId("il")}, ${id}, 'base_fee', ${lineDescriptions.baseFee(bill.cycle.start)}, 1, ${bill.baseFee}, ${feeStart}, ${bill.cycle.end}, 1 WHERE ${exists}`),
      );
    }
    if (discount < 0) statements.push(discountLine(id, bill.cycle, discount, exists));
    mapKeys(id, bill.patientKeys, exists);
    return { id, total };
  };
  const missedIds = missed.map((bill, i) => ({ bill, ...insertInvoice(bill, true, i + 1, discounts.amounts[i + 1]!) }));
  if (state.discount && discounts.used > 0) {
    statements.push(
      db.run(sql`UPDATE ${officeDiscounts} SET invoices_used = invoices_used + ${discounts.used},
          ended_at = ${discounts.ended ? now : null}, end_reason = ${discounts.ended ? "used_up" : null}
        WHERE id = ${state.discount.id} AND ended_at IS NULL AND ${finalizedByThisClose}`),
    );
  }
  const opened = outcome.open ? { ...outcome.open, invoiceId: insertInvoice(outcome.open, false, missed.length + 1).id } : null;

  const closed: ClosedBill[] = [
    {
      ...first,
      invoiceId: draft.id,
      total: firstTotal,
      nextInvoiceId: null,
      settlement: settled[0]!.settlement,
      carriedIn: draftCarriedIn, // carried onto the draft by its cycle's opening close
      discount: discounts.amounts[0]!,
    },
    ...missedIds.map((m, i) => ({ ...m.bill, invoiceId: m.id, total: m.total, nextInvoiceId: null, settlement: settled[i + 1]!.settlement, carriedIn: carriedInto(i + 1), discount: discounts.amounts[i + 1]! })),
  ];
  closed.forEach((c, i) => (c.nextInvoiceId = closed[i + 1]?.invoiceId ?? opened?.invoiceId ?? null));

  // 3. The office moves to the open cycle (or stays on its last one, canceled).
  const last = opened ?? closed.at(-1)!;
  statements.push(
    db.run(sql`UPDATE ${offices} SET
        cycle_start = ${last.cycle.start}, cycle_end = ${last.cycle.end}, cycle_end_at = ${last.endAt},
        plan_version_id = ${nextVersion.id}, pending_plan_version_id = NULL, status = ${outcome.status},
        time_zone = ${outcome.settings.timeZone}, billing_anchor_day = ${outcome.settings.anchorDay}, pending_time_zone = NULL, pending_anchor_day = NULL,
        canceled_at = ${outcome.status === "canceled" ? now : office.canceledAt}, updated_at = ${now}
      WHERE id = ${office.id} AND cycle_start = ${office.cycleStart} AND ${finalizedByThisClose}`),
  );
  return { closed, opened, status: outcome.status as OfficeStatus, statements, finalizedByThisClose };
}

/** The close's state from the results of `closeReads` (null office or draft when missing). */
export function closeStateFrom(results: Awaited<ReturnType<Database["batch"]>> | unknown[]) {
  const [officeRows, draftRows, versions, draftLines, events, discountRows] = results as [
    CloseState["office"][],
    CloseState["draft"][],
    CloseState["versions"],
    CloseState["draftLines"],
    PatientEvent[],
    { id: string; invoicesUsed: number; percentOff: number | null; amountOff: number | null; duration: CouponTerms["duration"]; durationCycles: number | null }[],
  ];
  const d = discountRows[0];
  const discount: OpenDiscount | null = d ? { id: d.id, invoicesUsed: d.invoicesUsed, coupon: { percentOff: d.percentOff, amountOff: d.amountOff, duration: d.duration, durationCycles: d.durationCycles } } : null;
  return { office: officeRows[0], draft: draftRows[0], versions, draftLines, events, discount };
}
