import { desc, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { invoicePatients, invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { patientEvents, patients } from "../db/patients";
import { sha256Hex } from "../security/crypto";

/** At most this many patients per check (docs/payment-plan.md §5.9). */
export const MAX_PATIENT_CHECK = 1000;

/**
 * The internal tier's question "was this patient counted on this invoice?" (§5.9): one batch with
 * the audit entry — the office, the invoice (this office's, monthly) and which of the given
 * pseudonyms its billable set holds. Only pseudonyms reach it; the raw ids ended at the route.
 */
export function patientCheckReads(db: Database, officeId: string, invoiceId: string, patientKeys: readonly string[]) {
  const keys = [...new Set(patientKeys)];
  return [
    db.select({ id: offices.id }).from(offices).where(sql`${offices.id} = ${officeId}`),
    db.select({ id: invoices.id, kind: invoices.kind, status: invoices.status, periodStart: invoices.periodStart, periodEnd: invoices.periodEnd }).from(invoices).where(sql`${invoices.id} = ${invoiceId} AND ${invoices.officeId} = ${officeId}`),
    db
      .select({ patientKey: invoicePatients.patientKey })
      .from(invoicePatients)
      .where(sql`${invoicePatients.invoiceId} = ${invoiceId} AND ${invoicePatients.officeId} = ${officeId} AND ${invoicePatients.patientKey} IN (${sql.join(keys.map((k) => sql`${k}`), sql`, `)})`),
  ] as const;
}

/** What the audit entry keeps of a check: counts and a digest of the pseudonyms asked about (never a raw id). */
export async function patientCheckAudit(patientKeys: readonly string[], counted: number) {
  return { checked: patientKeys.length, counted, patientKeysSha256: await sha256Hex([...patientKeys].sort().join("\n")) };
}

/** A patient's trace lists at most this many events and invoices, newest first (§5.9); more is said, not hidden. */
export const MAX_TRACE_EVENTS = 500;
export const MAX_TRACE_INVOICES = 240;

/**
 * One patient's billing trace (§5.9), read in one batch: the office, the patient's state, their
 * events (newest first) and every invoice whose billable set holds them (newest first). One more
 * row than the bound is read, to tell the caller the list was cut.
 */
export function patientBillingReads(db: Database, officeId: string, patientKey: string) {
  return [
    db.select({ id: offices.id }).from(offices).where(sql`${offices.id} = ${officeId}`),
    db.select({ active: patients.active, changedAt: patients.changedAt }).from(patients).where(sql`${patients.officeId} = ${officeId} AND ${patients.patientKey} = ${patientKey}`),
    db
      .select({ id: patientEvents.id, kind: patientEvents.kind, eventAt: patientEvents.eventAt, receivedAt: patientEvents.receivedAt, applied: patientEvents.applied })
      .from(patientEvents)
      .where(sql`${patientEvents.officeId} = ${officeId} AND ${patientEvents.patientKey} = ${patientKey}`)
      .orderBy(desc(patientEvents.eventAt), desc(patientEvents.receivedAt))
      .limit(MAX_TRACE_EVENTS + 1),
    db
      .select({ id: invoices.id, kind: invoices.kind, status: invoices.status, periodStart: invoices.periodStart, periodEnd: invoices.periodEnd, countedAt: invoicePatients.countedAt })
      // The office's invoices, each looked up in invoice_patients by its primary key (§5.9).
      .from(invoices)
      .innerJoin(invoicePatients, sql`${invoicePatients.invoiceId} = ${invoices.id} AND ${invoicePatients.patientKey} = ${patientKey}`)
      .where(sql`${invoices.officeId} = ${officeId}`)
      .orderBy(desc(invoices.periodStart))
      .limit(MAX_TRACE_INVOICES + 1),
  ] as const;
}

type EventRow = { id: string; kind: "activate" | "deactivate"; eventAt: number; receivedAt: number; applied: boolean };
type InvoiceRow = { id: string; kind: string; status: string; periodStart: string; periodEnd: string; countedAt: number };

export type PatientBilling = {
  patientKey: string;
  state: { known: boolean; active: boolean; since: string | null };
  events: { id: string; kind: "activate" | "deactivate"; occurredAt: string; recordedAt: string; applied: boolean }[];
  eventsTruncated: boolean;
  invoices: { invoiceId: string; kind: string; status: string; periodStart: string; periodEnd: string; cycleClosed: boolean; countedAt: string }[];
  invoicesTruncated: boolean;
};

/** The answer, and what the audit entry keeps of it: counts only (the pseudonym is the entry's target). */
export function patientBillingAudit(patientKey: string, state: { active: boolean; changedAt: number } | null, events: EventRow[], rows: InvoiceRow[]) {
  const iso = (ms: number) => new Date(ms).toISOString();
  const answer: PatientBilling = {
    patientKey,
    state: state ? { known: true, active: state.active, since: iso(state.changedAt) } : { known: false, active: false, since: null },
    events: events.slice(0, MAX_TRACE_EVENTS).map((e) => ({ id: e.id, kind: e.kind, occurredAt: iso(e.eventAt), recordedAt: iso(e.receivedAt), applied: e.applied })),
    eventsTruncated: events.length > MAX_TRACE_EVENTS,
    invoices: rows.slice(0, MAX_TRACE_INVOICES).map((r) => ({ invoiceId: r.id, kind: r.kind, status: r.status, periodStart: r.periodStart, periodEnd: r.periodEnd, cycleClosed: r.status !== "draft", countedAt: iso(r.countedAt) })),
    invoicesTruncated: rows.length > MAX_TRACE_INVOICES,
  };
  return { answer, audit: { known: answer.state.known, events: answer.events.length, invoices: answer.invoices.length } };
}
