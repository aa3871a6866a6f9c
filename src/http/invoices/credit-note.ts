import { createRoute, z } from "@hono/zod-openapi";
import { creditNoteMemoKeys, creditNoteReasons } from "../../db/credit-notes";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";
import { CreditNoteSchema, creditNoteView, InvoiceIdSchema } from "./view";

export const ROLES = ["platform_admin"] as const;

const money = z.number().int().min(1).max(100_000_000);

const BodySchema = z
  .object({
    amount: money.optional().openapi({ description: "Minor units: an amount of the whole invoice. Give `amount` or `lines`, not both.", example: 5000 }),
    lines: z
      .array(
        z
          .object({
            lineId: z.string().regex(/^il_[0-9a-f]{32}$/, "must be an invoice line id").openapi({ example: "il_0a1b2c3d4e5f60718293a4b5c6d7e8f9" }),
            amount: money.openapi({ description: "Minor units, at most what the line still has uncredited.", example: 2000 }),
          })
          .strict(),
      )
      .min(1)
      .max(250)
      .optional()
      .openapi({ description: "Per-line amounts; the credit note's amount is their sum." }),
    reason: z.enum(creditNoteReasons).openapi({ description: "Stripe's reason for the credit note." }),
    memo: z.enum(creditNoteMemoKeys).openapi({ description: "A fixed memo (no free text is sent to Stripe): its text prints on Stripe's credit note." }),
    settlement: z
      .enum(["refund", "customer_balance"])
      .optional()
      .openapi({ description: "A paid invoice only (required there): `refund` the payment, or credit the office's Stripe `customer_balance` (applied to its next invoice). Absent for an open invoice: the credit note lowers its amount due." }),
  })
  .strict()
  .refine((b) => (b.amount === undefined) !== (b.lines === undefined), { message: "give either amount or lines", path: ["amount"] })
  .openapi("CreditNoteRequest", {
    example: { amount: 5000, reason: "order_change", memo: "service_credit" },
  });

const ResponseSchema = CreditNoteSchema.extend({
  creditable: z.number().int().openapi({ description: "What can still be credited of the invoice after this one, in minor units." }),
}).openapi("CreditNoteIssued");

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/invoices/{invoiceId}/credit-notes",
  operationId: "createCreditNote",
  tags: ["Invoices"],
  summary: "Issue a credit note of an open or paid invoice (platform_admin)",
  description:
    "Required role: platform_admin. docs/payment-plan.md §8.10. The invoice must be on Stripe (finalized there). On an open invoice the credit note lowers the amount due (brought to 0, the invoice is paid); on a paid one it is refunded (`settlement: refund`) or credited to the office's Stripe balance (`settlement: customer_balance`). Never more than what remains: an open invoice's total less its credit notes; a paid one's amount paid less refunds and balance credits. 201 when Stripe issued it; 202 when it is `pending` (Stripe could not be reached: the office's outbox creates it later, once, with the key `credit_note_<id>`). 409 when the invoice is not open or paid, not on Stripe, the amount is over the bound, `settlement` is missing for a paid invoice or given for an open one, or Stripe refused the credit note; 422 when a line is not one of the invoice's or cannot be credited by line; 503 when Stripe cannot be reached to read the invoice (nothing is recorded).",
  security: [{ bearerAuth: [] }],
  request: {
    params: z.object({ officeId: OfficeIdSchema, invoiceId: InvoiceIdSchema }),
    body: {
      required: true,
      content: {
        "application/json": {
          schema: BodySchema,
          examples: {
            open: { summary: "An amount off an open invoice", value: { amount: 5000, reason: "order_change", memo: "service_credit" } },
            byLine: { summary: "Per-line amounts", value: { lines: [{ lineId: "il_0a1b2c3d4e5f60718293a4b5c6d7e8f9", amount: 2000 }], reason: "product_unsatisfactory", memo: "billing_error" } },
            paidRefund: { summary: "A paid invoice, refunded", value: { amount: 5000, reason: "duplicate", memo: "duplicate_charge", settlement: "refund" } },
            paidBalance: { summary: "A paid invoice, credited to the balance", value: { amount: 4000, reason: "order_change", memo: "goodwill", settlement: "customer_balance" } },
          },
        },
      },
    },
  },
  responses: {
    201: { description: "The credit note, issued on Stripe.", content: { "application/json": { schema: ResponseSchema } } },
    202: { description: "The credit note, recorded and pending (Stripe unreachable; created later by the office's outbox).", content: { "application/json": { schema: ResponseSchema } } },
    ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 502, 503),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId, invoiceId } = c.req.valid("param");
    const body = c.req.valid("json");
    const principal = await authorize(c, { action: "credit_note.request", roles: ROLES, officeId, targetIds: [invoiceId] });
    const { creditNote, creditable } = await officeObject(c.env, officeId).creditNote(
      { invoiceId, amount: body.amount ?? null, lines: body.lines ?? null, reason: body.reason, memo: body.memo, settlement: body.settlement ?? null },
      { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId },
    );
    if (creditNote.status === "failed") throw new ApiError("CONFLICT", `Stripe refused the credit note (${creditNote.errorCode ?? "error"}); nothing was credited.`);
    return c.json({ ...creditNoteView(creditNote), creditable }, creditNote.status === "issued" ? 201 : 202);
  });
}
