import { z } from "@hono/zod-openapi";
import { invoiceKinds, invoiceStatuses, stripeStates, type invoiceLines, type invoices } from "../../db/invoices";

export const InvoiceIdSchema = z
  .string()
  .regex(/^inv_[0-9a-f]{32}$/, "must be an invoice id (inv_ followed by 32 hex digits)")
  .openapi({ example: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6" });

export const InvoiceLineSchema = z
  .object({
    id: z.string(),
    kind: z.enum(["patients", "base_fee", "setup_fee", "proration", "one_off"]),
    description: z.string().openapi({ example: "Active patients — Nov 2026" }),
    category: z.string().nullable(),
    quantity: z.number().int(),
    amount: z.number().int().openapi({ description: "Minor units." }),
    periodStart: z.string().nullable(),
    periodEnd: z.string().nullable(),
  })
  .openapi("InvoiceLine");

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
      description: "Where the invoice stands on Stripe: `none` (not sent: a draft, or a zero total), `draft_created`, `finalized` (Stripe collects it), `voided`, `abandoned` (voided before Stripe finalized it), `failed` (Stripe refused it; see `stripeError`).",
    }),
    stripeError: z.string().nullable().openapi({ description: "Stripe's error code when the push or void failed for good." }),
    lines: z.array(InvoiceLineSchema).optional(),
  })
  .openapi("Invoice");

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The invoice as the API shows it; internal notes and patient mappings are never part of it. */
export function invoiceView(inv: typeof invoices.$inferSelect, lines?: (typeof invoiceLines.$inferSelect)[]): z.infer<typeof InvoiceSchema> {
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
    ...(lines
      ? {
          lines: lines.map((l) => ({
            id: l.id,
            kind: l.kind,
            description: l.description,
            category: l.category,
            quantity: l.quantity,
            amount: l.amount,
            periodStart: l.periodStart,
            periodEnd: l.periodEnd,
          })),
        }
      : {}),
  };
}
