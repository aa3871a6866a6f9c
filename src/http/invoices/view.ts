import { z } from "@hono/zod-openapi";
import { InvoiceDocumentsSchema, type InvoiceDocuments } from "./documents";
import { invoiceKinds, invoiceLineKinds, invoiceStatuses, stripeStates, type invoiceLines, type invoices } from "../../db/invoices";
import { refundReasons, refundStatuses, type refunds } from "../../db/refunds";
import { creditNoteMemoKeys, creditNoteMemos, creditNoteReasons, creditNoteSettlements, creditNoteSources, creditNoteStatuses, type creditNotes } from "../../db/credit-notes";
import { payable } from "../../stripe/invoice-tax";

export const InvoiceIdSchema = z
  .string()
  .regex(/^inv_[0-9a-f]{32}$/, "must be an invoice id (inv_ followed by 32 hex digits)")
  .openapi({ example: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6" });

export const InvoiceLineSchema = z
  .object({
    id: z.string(),
    kind: z.enum(invoiceLineKinds).openapi({ description: "`carried_balance`: the total of an earlier invoice below Stripe's minimum charge, carried to this one (docs/payment-plan.md §8.9). `discount`: a coupon's discount, a negative amount (§6.10)." }),
    description: z.string().openapi({ example: "Active patients 51–200 — Nov 2026" }),
    category: z.string().nullable(),
    quantity: z.number().int().openapi({ example: 37 }),
    unitAmount: z.number().int().nullable().openapi({
      example: 600,
      description: "Unit price in minor units of a quantity × unit line (a patients tier: `quantity × unitAmount = amount`); null for a fixed amount and for a draft's running patient count.",
    }),
    rankFrom: z.number().int().nullable().openapi({ example: 51, description: "A patients tier line: the first patient rank it charges (above the plan's free allowance)." }),
    rankTo: z.number().int().nullable().openapi({ example: 200, description: "A patients tier line: the last rank of its tier; null for the unbounded last tier." }),
    amount: z.number().int().openapi({ example: 22200, description: "Minor units." }),
    periodStart: z.string().nullable().openapi({ description: "The first day the line bills (a prorated fee: the first day billed)." }),
    periodEnd: z.string().nullable().openapi({ description: "The day after the last day the line bills (exclusive)." }),
  })
  .openapi("InvoiceLine");

export const InvoicePatientsSchema = z
  .object({
    billable: z.number().int().openapi({ example: 87, description: "Patients billable in the cycle (active at some instant of it): a count, never an identifier." }),
    included: z.number().int().openapi({ example: 10, description: "The plan's free allowance: the first ranks, charged by no line." }),
  })
  .openapi("InvoicePatients", { description: "Monthly invoices: the billable patients and the allowance (shown even when no line charges them)." });

export const InvoiceRefundSchema = z
  .object({
    id: z.string().openapi({ example: "rf_0a1b2c3d4e5f60718293a4b5c6d7e8f9" }),
    amount: z.number().int().openapi({ description: "Minor units." }),
    reason: z.enum(refundReasons),
    status: z.enum(refundStatuses).openapi({
      description: "`pending`: not made yet, or Stripe is still processing it; `succeeded`: Stripe made it; `failed`: Stripe refused it or it failed later (`errorCode`: Stripe's failure reason). Only pending and succeeded refunds Stripe has count in `amountRefunded`.",
    }),
    errorCode: z.string().nullable(),
    source: z.enum(["api", "stripe"]).openapi({ description: "`api`: requested through this API; `stripe`: made outside it (the Stripe Dashboard), recorded from Stripe's events." }),
    createdAt: z.string().datetime(),
  })
  .openapi("InvoiceRefund");

export const CreditNoteSchema = z
  .object({
    id: z.string().openapi({ example: "cn_0a1b2c3d4e5f60718293a4b5c6d7e8f9" }),
    invoiceId: z.string(),
    amount: z.number().int().openapi({ description: "Minor units.", example: 5000 }),
    lines: z
      .array(z.object({ lineId: z.string(), amount: z.number().int() }))
      .nullable()
      .openapi({ description: "The per-line split when the credit note was asked by line; null for an amount of the whole invoice." }),
    reason: z.enum(creditNoteReasons).nullable().openapi({ description: "Stripe's reason, as sent (null: one made outside this API without a reason)." }),
    memo: z
      .enum(creditNoteMemoKeys)
      .nullable()
      .openapi({ description: `A fixed memo, printed on Stripe's credit note: ${Object.entries(creditNoteMemos).map(([k, v]) => `\`${k}\` "${v}"`).join(", ")}. Null for one made outside this API (its memo is not kept).` }),
    settlement: z.enum(creditNoteSettlements).openapi({ description: "`none`: an open invoice's amount due went down; `refund`: a paid invoice's payment was refunded (the refund is listed under `refunds`); `customer_balance`: credited to the office's Stripe balance, applied to its next invoice." }),
    status: z.enum(creditNoteStatuses).openapi({ description: "`pending`: recorded, not yet on Stripe (retried by the office's outbox); `issued`: Stripe has it; `void`: voided on Stripe; `failed`: Stripe refused it (`errorCode`)." }),
    errorCode: z.string().nullable(),
    source: z.enum(creditNoteSources).openapi({ description: "`api`: issued through this API; `stripe`: made outside it (Stripe's Dashboard) on this invoice, recorded from Stripe's events with Stripe's amounts (docs/payment-plan.md §8.10)." }),
    createdAt: z.string().datetime(),
  })
  .openapi("CreditNote");

export const InvoiceSchema = z
  .object({
    id: z.string(),
    officeId: z.string(),
    kind: z.enum(invoiceKinds),
    status: z.enum(invoiceStatuses),
    currency: z.string(),
    periodStart: z.string(),
    periodEnd: z.string(),
    subtotal: z.number().int(),
    total: z.number().int(),
    amountPaid: z.number().int(),
    amountRefunded: z.number().int(),
    finalizedAt: z.string().datetime().nullable(),
    paidAt: z.string().datetime().nullable(),
    voidedAt: z.string().datetime().nullable(),
    stripeState: z.enum(stripeStates).openapi({
      description: "Where the invoice stands on Stripe: `none` (not sent: a draft, or a zero total), `draft_created`, `finalized` (Stripe collects it), `voided`, `abandoned` (voided before Stripe finalized it), `failed` (Stripe refused it; see `stripeError`), `carried` (below Stripe's minimum charge: never sent, its total carried to the office's next invoice; the invoice reads `paid`), `written_off` (below the minimum with no next invoice: never sent, `void`).",
    }),
    stripeError: z.string().nullable().openapi({
      description:
        "Stripe's error code when the push or void failed for good; or why a push is held (docs/payment-plan.md §11.7): `tax_address_required` (Stripe Tax without the office's address), `customer_tax_location_invalid` (Stripe could not place the address) — held until the office's profile changes.",
    }),
    tax: z
      .object({
        mode: z.enum(["stripe_tax", "manual"]),
        basisPoints: z.number().int().nullable().openapi({ description: "A manual rate (hundredths of a percent); null under Stripe Tax." }),
        name: z.string().nullable(),
        amount: z.number().int().nullable().openapi({ description: "Stripe's tax on the total, read back once Stripe finalized the invoice (§11.6); null before." }),
        totalIncludingTax: z.number().int().nullable().openapi({ description: "What the office owes: `total` + `amount`; null before Stripe finalized the invoice." }),
      })
      .nullable()
      .openapi("InvoiceTax", { description: "The invoice's tax, fixed at its first push (docs/payment-plan.md §11); null: none.", example: { mode: "manual", basisPoints: 825, name: "Sales tax", amount: 2879, totalIncludingTax: 37779 } }),
    patients: InvoicePatientsSchema.nullable(),
    documents: InvoiceDocumentsSchema.nullable(),
    lines: z.array(InvoiceLineSchema).optional(),
    refunds: z.array(InvoiceRefundSchema).optional().openapi({ description: "The invoice read (not the list): its refunds, oldest first." }),
    creditNotes: z.array(CreditNoteSchema).optional().openapi({ description: "The invoice read (not the list): its credit notes, oldest first (docs/payment-plan.md §8.10)." }),
    amountCredited: z.number().int().optional().openapi({ description: "The invoice read: the sum of its credit notes that are pending or issued." }),
    amountDue: z.number().int().optional().openapi({ description: "The invoice read: what is still asked for — an open invoice's total (with the tax Stripe computed, once read back) less `amountCredited` and what was paid; 0 otherwise." }),
  })
  .openapi("Invoice");

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The invoice as the API shows it; internal notes and patient mappings are never part of it. */
export function invoiceView(
  inv: typeof invoices.$inferSelect,
  lines?: (typeof invoiceLines.$inferSelect)[],
  refundRows?: (typeof refunds.$inferSelect)[],
  documents?: InvoiceDocuments | null,
  creditNoteRows?: (typeof creditNotes.$inferSelect)[],
): z.infer<typeof InvoiceSchema> {
  const credited = (creditNoteRows ?? []).filter((n) => n.status === "pending" || n.status === "issued").reduce((sum, n) => sum + n.amount, 0);
  return {
    id: inv.id,
    officeId: inv.officeId,
    kind: inv.kind,
    status: inv.status,
    currency: inv.currency,
    periodStart: inv.periodStart,
    periodEnd: inv.periodEnd,
    subtotal: inv.subtotal,
    total: inv.total,
    amountPaid: inv.amountPaid,
    amountRefunded: inv.amountRefunded,
    finalizedAt: iso(inv.finalizedAt),
    paidAt: iso(inv.paidAt),
    voidedAt: iso(inv.voidedAt),
    stripeState: inv.stripeState,
    stripeError: inv.stripeError,
    tax:
      inv.taxMode === "stripe_tax" || inv.taxMode === "manual"
        ? { mode: inv.taxMode, basisPoints: inv.taxRateBps, name: inv.taxRateName, amount: inv.taxAmount, totalIncludingTax: inv.totalIncludingTax }
        : null,
    patients: inv.kind === "monthly" ? { billable: inv.billablePatients, included: inv.includedPatients } : null,
    documents: documents ?? null,
    ...(lines
      ? {
          lines: lines.map(lineView),
        }
      : {}),
    ...(refundRows ? { refunds: refundRows.map(refundView) } : {}),
    ...(creditNoteRows
      ? { creditNotes: creditNoteRows.map(creditNoteView), amountCredited: credited, amountDue: inv.status === "open" || inv.status === "uncollectible" ? Math.max(0, payable(inv) - credited - inv.amountPaid) : 0 }
      : {}),
  };
}

/** A credit note as the API shows it. */
export function creditNoteView(n: typeof creditNotes.$inferSelect): z.infer<typeof CreditNoteSchema> {
  return { id: n.id, invoiceId: n.invoiceId, amount: n.amount, lines: n.lines ?? null, reason: n.reason, memo: n.memo, settlement: n.settlement, status: n.status, errorCode: n.errorCode, source: n.source, createdAt: new Date(n.createdAt).toISOString() };
}

/** A refund as the invoice read shows it. */
export function refundView(r: typeof refunds.$inferSelect): z.infer<typeof InvoiceRefundSchema> {
  return { id: r.id, amount: r.amount, reason: r.reason, status: r.status, errorCode: r.errorCode, source: r.requestedBy === "stripe" ? "stripe" : "api", createdAt: new Date(r.createdAt).toISOString() };
}

/** A line as the API shows it (never its internal note). */
export function lineView(l: typeof invoiceLines.$inferSelect): z.infer<typeof InvoiceLineSchema> {
  return {
    id: l.id,
    kind: l.kind,
    description: l.description,
    category: l.category,
    quantity: l.quantity,
    unitAmount: l.unitAmount,
    rankFrom: l.rankFrom,
    rankTo: l.rankTo,
    amount: l.amount,
    periodStart: l.periodStart,
    periodEnd: l.periodEnd,
  };
}
