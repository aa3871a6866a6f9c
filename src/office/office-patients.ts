import { eq } from "drizzle-orm";
import { offices } from "../db/offices";
import { ApiError } from "../errors";
import { advancePatientKey } from "../security/crypto";
import { loadConfig, patientKeyChain } from "../config";
import { OfficeStripe } from "./office-stripe";
import type { Actor } from "./office-core";
import type { OfficeResult } from "./result";
import { patientBillingAudit, patientBillingReads, patientCheckAudit, patientCheckReads, type PatientBilling } from "./patient-trace";

/**
 * The office's patients as the internal tier sees them (docs/payment-plan.md §5.9): the version of
 * the office's pseudonyms, and the patient check and trace. Only pseudonyms reach these methods:
 * the raw ids ended at the route.
 */
export abstract class OfficePatients extends OfficeStripe {
  /**
   * The version of the office's stored pseudonyms. Only this object (the office's single writer)
   * sets it — at onboarding and in `rekeyPatients` — and it keeps a copy in its own storage, so a
   * patient event costs no database round trip for it (one batch, as every operation); an office
   * onboarded before the copy existed is read from the database once.
   */
  protected rememberPatientKeyVersion(version: number) {
    this.ctx.storage.sql.exec("INSERT INTO patient_key_state (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version", version);
  }

  protected async patientKeyVersion(officeId: string, fresh = false): Promise<number | null> {
    if (!fresh) {
      const kept = this.ctx.storage.sql.exec<{ version: number }>("SELECT version FROM patient_key_state WHERE id = 1").toArray()[0];
      if (kept) return kept.version;
    }
    const [row] = await this.db.select({ version: offices.patientKeyVersion }).from(offices).where(eq(offices.id, officeId));
    if (row) this.rememberPatientKeyVersion(row.version);
    return row ? row.version : null;
  }

  /** The route's version-1 pseudonyms carried to the office's version (no office: version 1, the reads answer 404). */
  protected async officePatientKeys(officeId: string, rootPatientKeys: readonly string[]): Promise<string[]> {
    const chain = patientKeyChain(loadConfig(this.env));
    const version = (await this.patientKeyVersion(officeId)) ?? 1;
    if (version > chain.length + 1) throw new ApiError("SERVICE_UNAVAILABLE", "Patients cannot be looked up for this office right now.");
    return Promise.all(rootPatientKeys.map((k) => advancePatientKey(chain, k, 1, version)));
  }

  /**
   * Which of the given patients (root pseudonyms, in order) a monthly invoice counted (§5.9): one
   * batch with the audit entry (pseudonym digest and counts only). The pseudonyms are carried to
   * the office's key version first.
   */
  async patientCheck(officeId: string, invoiceId: string, rootPatientKeys: string[], actor: Actor): Promise<OfficeResult<{ periodStart: string; periodEnd: string; results: { patientKey: string; counted: boolean }[] }>> {
    return this.exclusive(officeId, "patient.check", async () => {
      const keys = await this.officePatientKeys(officeId, rootPatientKeys);
      const reads = patientCheckReads(this.db, officeId, invoiceId, keys);
      const [officeRows, invoiceRows, countedRows] = await this.db.batch(reads);
      if (!officeRows[0]) throw new ApiError("NOT_FOUND", "No such office.");
      const invoice = invoiceRows[0];
      if (!invoice || invoice.kind !== "monthly") await this.refuse(officeId, actor, "patient.check", [invoiceId], new ApiError("NOT_FOUND", "No such monthly invoice."));
      const counted = new Set(countedRows.map((r) => r.patientKey));
      const results = keys.map((patientKey) => ({ patientKey, counted: counted.has(patientKey) }));
      await this.write(officeId, () => [], [{ ...actor, action: "patient.check", outcome: "allowed", officeId, targetIds: [invoiceId], details: await patientCheckAudit(keys, results.filter((r) => r.counted).length) }]);
      return { periodStart: invoice!.periodStart, periodEnd: invoice!.periodEnd, results };
    });
  }

  /**
   * One patient's billing trace (§5.9): state, events and every invoice that counted them, read in
   * one batch with the audit entry (the pseudonym and counts only).
   */
  async patientBilling(officeId: string, rootPatientKey: string, actor: Actor): Promise<OfficeResult<PatientBilling>> {
    return this.exclusive(officeId, "patient.billing", async () => {
      const [patientKey] = await this.officePatientKeys(officeId, [rootPatientKey]);
      const reads = patientBillingReads(this.db, officeId, patientKey!);
      const [officeRows, stateRows, eventRows, invoiceRows] = await this.db.batch(reads);
      if (!officeRows[0]) throw new ApiError("NOT_FOUND", "No such office.");
      const trace = patientBillingAudit(patientKey!, stateRows[0] ?? null, eventRows, invoiceRows);
      await this.write(officeId, () => [], [{ ...actor, action: "patient.billing", outcome: "allowed", officeId, targetIds: [patientKey!], details: trace.audit }]);
      return trace.answer;
    });
  }
}
