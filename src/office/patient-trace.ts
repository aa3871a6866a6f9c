import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { invoicePatients, invoices } from "../db/invoices";
import { offices } from "../db/offices";
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
