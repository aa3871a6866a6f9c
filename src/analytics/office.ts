import { sql } from "drizzle-orm";
import { tieredAmount } from "../billing/pricing";
import type { Database } from "../db/client";
import type { PriceTier } from "../db/plans";

/**
 * One office's figures per cycle (docs/analytics.md, "Office analytics"): billable patients and
 * spend of its last cycles, the current cycle so far and its projection. One batch: one round trip.
 */

const DAY = 86_400_000;

type Row = Record<string, number | string | null>;
const num = (v: unknown) => (typeof v === "number" ? v : v == null ? 0 : Number(v));

export type OfficeCycle = {
  invoiceId: string;
  periodStart: string;
  periodEnd: string;
  status: string;
  currency: string;
  inTrial: boolean;
  billablePatients: number;
  includedPatients: number;
  /** The cycle's monthly invoice total (so far, for the current cycle). */
  invoiceTotal: number;
  /** Setup and one-off invoices issued for the cycle (non-void). */
  otherInvoices: number;
  spend: number;
  amountPaid: number;
  amountRefunded: number;
};

export type OfficeAnalytics = {
  officeId: string;
  asOf: string;
  cycles: OfficeCycle[];
  current: null | {
    periodStart: string;
    periodEnd: string;
    currency: string;
    elapsedDays: number;
    remainingDays: number;
    soFar: { billablePatients: number; total: number };
    projection: { billablePatients: number; total: number; arrivalsPerDay: number };
  };
};

export function officeStatements(officeId: string, cycles: number) {
  return {
    // The office, and the plan version its current draft is priced with.
    plan: sql`SELECT o.id AS id, pv.tiers AS tiers FROM offices o LEFT JOIN plan_versions pv
        ON pv.id = COALESCE((SELECT d.plan_version_id FROM invoices d WHERE d.office_id = o.id AND d.kind = 'monthly' AND d.status = 'draft'), o.plan_version_id)
      WHERE o.id = ${officeId}`,
    cycles: sql`SELECT i.id AS id, i.status AS status, i.period_start AS period_start, i.period_end AS period_end, i.period_start_at AS start_at, i.period_end_at AS end_at,
        i.currency AS currency, i.in_trial AS in_trial, i.billable_patients AS billable, i.included_patients AS included, i.total AS total,
        i.amount_paid AS paid, i.amount_refunded AS refunded, i.plan_version_id AS plan_version_id,
        (SELECT COALESCE(SUM(l.amount), 0) FROM invoice_lines l WHERE l.invoice_id = i.id AND l.kind = 'patients') AS patients_amount,
        (SELECT COALESCE(SUM(x.total), 0) FROM invoices x WHERE x.office_id = i.office_id AND x.kind <> 'monthly' AND x.status NOT IN ('draft','void')
           AND x.period_start >= i.period_start AND x.period_start < i.period_end) AS other,
        (SELECT COALESCE(SUM(x.amount_paid), 0) FROM invoices x WHERE x.office_id = i.office_id AND x.kind <> 'monthly' AND x.status NOT IN ('draft','void')
           AND x.period_start >= i.period_start AND x.period_start < i.period_end) AS other_paid,
        (SELECT COALESCE(SUM(x.amount_refunded), 0) FROM invoices x WHERE x.office_id = i.office_id AND x.kind <> 'monthly' AND x.status NOT IN ('draft','void')
           AND x.period_start >= i.period_start AND x.period_start < i.period_end) AS other_refunded
      FROM invoices i WHERE i.office_id = ${officeId} AND i.kind = 'monthly' AND i.status <> 'void'
      ORDER BY i.period_start DESC LIMIT ${cycles}`,
    // The current draft's patients first counted after the cycle's first day: the arrivals a projection extrapolates.
    arrivals: sql`SELECT COUNT(*) AS arrivals FROM invoice_patients m JOIN invoices i ON i.id = m.invoice_id
      WHERE i.office_id = ${officeId} AND i.kind = 'monthly' AND i.status = 'draft' AND m.counted_at >= i.period_start_at + ${DAY}`,
  };
}

/** The office's analytics, or null when the office does not exist. */
export async function officeAnalytics(db: Database, officeId: string, cycles: number, now: number): Promise<OfficeAnalytics | null> {
  const s = officeStatements(officeId, cycles);
  const [plan, rows, arrivals] = (await db.batch([db.all<Row>(s.plan), db.all<Row>(s.cycles), db.all<Row>(s.arrivals)])) as unknown as Row[][];
  if (!plan![0]) return null;
  const list: OfficeCycle[] = rows!.map((r) => ({
    invoiceId: String(r.id),
    periodStart: String(r.period_start),
    periodEnd: String(r.period_end),
    status: String(r.status),
    currency: String(r.currency),
    inTrial: num(r.in_trial) === 1,
    billablePatients: num(r.billable),
    includedPatients: num(r.included),
    invoiceTotal: num(r.total),
    otherInvoices: num(r.other),
    spend: num(r.total) + num(r.other),
    amountPaid: num(r.paid) + num(r.other_paid),
    amountRefunded: num(r.refunded) + num(r.other_refunded),
  }));
  const draftRow = rows!.find((r) => r.status === "draft");
  let current: OfficeAnalytics["current"] = null;
  if (draftRow) {
    const startAt = num(draftRow.start_at);
    const endAt = num(draftRow.end_at);
    const elapsed = Math.max(0, Math.min(now, endAt) - startAt);
    const remaining = Math.max(0, endAt - Math.max(now, startAt));
    const soFar = num(draftRow.billable);
    // Patients active at the cycle's start are counted on its first day; later arrivals come at a rate the projection keeps.
    const perDay = elapsed > DAY ? num(arrivals![0]?.arrivals) / ((elapsed - DAY) / DAY) : 0;
    const projectedPatients = soFar + Math.round((perDay * remaining) / DAY);
    const tiers = (typeof plan![0].tiers === "string" ? JSON.parse(plan![0].tiers) : []) as PriceTier[];
    const projectedPatientsAmount = num(draftRow.in_trial) === 1 ? 0 : tieredAmount(projectedPatients, tiers, num(draftRow.included)).amount;
    current = {
      periodStart: String(draftRow.period_start),
      periodEnd: String(draftRow.period_end),
      currency: String(draftRow.currency),
      elapsedDays: Math.round((elapsed / DAY) * 10) / 10,
      remainingDays: Math.round((remaining / DAY) * 10) / 10,
      soFar: { billablePatients: soFar, total: num(draftRow.total) },
      projection: {
        billablePatients: projectedPatients,
        total: num(draftRow.total) - num(draftRow.patients_amount) + projectedPatientsAmount,
        arrivalsPerDay: Math.round(perDay * 100) / 100,
      },
    };
  }
  return { officeId, asOf: new Date(now).toISOString(), cycles: list, current };
}
