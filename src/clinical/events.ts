import { z } from "zod";
import { clinicalEventTypes } from "../db/clinical-events";

/**
 * What the clinical application receives (docs/clinical-events.md): an allowlist. Every payload
 * is parsed through these strict schemas before it is signed and sent; a field not listed here
 * (a patient's pseudonym, an amount, a name) makes the event undeliverable instead of leaking.
 * Office and invoice ids, statuses, periods and counts only — never a patient.
 */
const OfficeId = z.string().regex(/^off_[0-9a-f]{32}$/);
const InvoiceId = z.string().regex(/^inv_[0-9a-f]{32}$/);
const LocalDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const OfficeStatus = z.enum(["trialing", "active", "past_due", "suspended", "canceled"]);
const InvoiceStatus = z.enum(["draft", "open", "paid", "void", "uncollectible"]);

const invoiceData = z
  .object({ officeId: OfficeId, invoiceId: InvoiceId, invoiceKind: z.enum(["monthly", "setup", "one_off"]), status: InvoiceStatus, periodStart: LocalDate, periodEnd: LocalDate })
  .strict();

export const eventDataSchemas = {
  "office.status_changed": z.object({ officeId: OfficeId, from: OfficeStatus, to: OfficeStatus }).strict(),
  "invoice.finalized": invoiceData,
  "invoice.paid": invoiceData,
  "invoice.payment_failed": invoiceData,
  "invoice.voided": invoiceData,
  "cycle.closed": invoiceData.extend({ billablePatients: z.number().int().min(0) }).strict(),
} as const satisfies Record<(typeof clinicalEventTypes)[number], z.ZodType>;

export type ClinicalEventType = keyof typeof eventDataSchemas;

/** The envelope: the same for every type. */
export const envelopeSchema = z
  .object({
    id: z.string().regex(/^cev_[0-9a-f]{32}$/),
    type: z.enum(clinicalEventTypes),
    officeId: OfficeId,
    sequence: z.number().int().min(1),
    occurredAt: z.string().datetime(),
    data: z.record(z.string(), z.unknown()),
  })
  .strict();

export type ClinicalEvent = z.infer<typeof envelopeSchema>;

/** The stored row as the payload the receiver gets, or null when the data is not on the allowlist. */
export function eventPayload(row: { id: string; type: string; officeId: string; seq: number; occurredAt: number; data: string }): ClinicalEvent | null {
  let data: unknown;
  try {
    data = JSON.parse(row.data);
  } catch {
    return null;
  }
  const envelope = envelopeSchema.safeParse({ id: row.id, type: row.type, officeId: row.officeId, sequence: row.seq, occurredAt: new Date(row.occurredAt).toISOString(), data });
  if (!envelope.success) return null;
  const schema = eventDataSchemas[envelope.data.type];
  const parsed = schema.safeParse(envelope.data.data);
  if (!parsed.success || (parsed.data as { officeId: string }).officeId !== row.officeId) return null;
  return { ...envelope.data, data: parsed.data };
}
