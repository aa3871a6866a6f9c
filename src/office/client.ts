import type { Env } from "../env";
import type { Actor } from "./office-billing";
import type { ChargeInput } from "./charges";
import type { OnboardingInput } from "./onboarding";
import type { PatientEventRequest } from "./patient-events";
import type { OfficeRead } from "./reads";
import type { SubscriptionChange } from "./subscription";
import type { OfficePatch } from "./profile";
import { unwrap } from "./result";
import type { refundReasons } from "../db/refunds";
import type { CreditNoteInput } from "./office-stripe";

export type RefundInput = { invoiceId: string; amount: number | null; reason: (typeof refundReasons)[number] };

/** The small typed client the rest of the Worker uses to reach an office's Durable Object. */
export function officeObject(env: Pick<Env, "OFFICE_BILLING">, officeId: string) {
  const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
  return {
    info: async () => unwrap(await stub.info(officeId)),
    rekeyPatients: async (actor: Actor) => unwrap(await stub.rekeyPatients(officeId, actor)),
    patientEvents: async (requests: PatientEventRequest[], actor: Actor) => unwrap(await stub.patientEvents(officeId, requests, actor)),
    addCharge: async (input: ChargeInput, actor: Actor) => unwrap(await stub.addCharge(officeId, input, actor)),
    read: async (read: OfficeRead, actor: Actor) => unwrap(await stub.read(officeId, read, actor)),
    patientBilling: async (rootPatientKey: string, actor: Actor) => unwrap(await stub.patientBilling(officeId, rootPatientKey, actor)),
    patientCheck: async (invoiceId: string, rootPatientKeys: string[], actor: Actor) => unwrap(await stub.patientCheck(officeId, invoiceId, rootPatientKeys, actor)),
    updateProfile: async (patch: OfficePatch, actor: Actor) => unwrap(await stub.updateProfile(officeId, patch, actor)),
    applyDiscount: async (code: string, actor: Actor) => unwrap(await stub.applyDiscount(officeId, code, actor)),
    removeDiscount: async (actor: Actor) => unwrap(await stub.removeDiscount(officeId, actor)),
    changeSubscription: async (change: SubscriptionChange, actor: Actor) => unwrap(await stub.changeSubscription(officeId, change, actor)),
    closeCycles: async (now: number, actor: Actor) => unwrap(await stub.closeCycles(officeId, now, actor)),
    previewUpcoming: async (actor: Actor) => unwrap(await stub.previewUpcoming(officeId, actor)),
    previewClose: async (at: number) => unwrap(await stub.previewClose(officeId, at)),
    onboard: async (input: OnboardingInput, actor: Actor) => unwrap(await stub.onboard(officeId, input, actor)),
    voidInvoice: async (invoiceId: string, actor: Actor) => unwrap(await stub.voidInvoice(officeId, invoiceId, actor)),
    refund: async (input: RefundInput, actor: Actor) => unwrap(await stub.refund(officeId, input, actor)),
    creditNote: async (input: CreditNoteInput, actor: Actor) => unwrap(await stub.creditNote(officeId, input, actor)),
    billingPortal: async (actor: Actor) => unwrap(await stub.billingPortal(officeId, actor)),
    paymentSetupSession: async (actor: Actor) => unwrap(await stub.paymentSetupSession(officeId, actor)),
    syncStripe: async () => unwrap(await stub.syncStripe(officeId)),
    kickStripe: async () => unwrap(await stub.kickStripe(officeId)),
    reconcileStripe: async () => unwrap(await stub.reconcileStripe(officeId)),
  };
}
