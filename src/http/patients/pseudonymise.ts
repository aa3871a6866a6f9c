import type { Context } from "hono";
import { requestKeySecret } from "../../config";
import type { PatientEventKind, PatientEventRequest } from "../../office/patient-events";
import { patientKeySync } from "../../security/crypto";
import { hmacSha256HexSync } from "../../security/sha256";
import type { AppEnv } from "../context";

/** An event as a client reports it: the raw patient id, which ends at the route. */
export type ReportedEvent = { patientId: string; kind: PatientEventKind; occurredAt: string; idempotencyKey: string };

/**
 * The raw patient id ends here: only its pseudonym travels on, under version 1 (the chain's root);
 * the office's object carries it to the version the office's rows are under. The idempotency key
 * is keyed too, because clients sometimes build it from the patient's record number; under the
 * root secret, which rotation never replaces, so replays keep matching.
 */
export function pseudonymise(c: Context<AppEnv>, officeId: string, events: ReportedEvent[]): PatientEventRequest[] {
  const secret = c.var.config.PATIENT_KEY_SECRET;
  const keySecret = requestKeySecret(c.var.config);
  // Synchronous HMACs (src/security/sha256.ts): 2,000 for a full request, without an await each.
  return events.map((e) => ({
    kind: e.kind,
    rootPatientKey: patientKeySync(secret, officeId, e.patientId),
    occurredAt: Date.parse(e.occurredAt),
    idempotencyKeyHash: hmacSha256HexSync(keySecret, `idempotency:${officeId}:${e.idempotencyKey}`),
  }));
}
