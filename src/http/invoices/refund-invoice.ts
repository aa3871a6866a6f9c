import { createRoute, z } from "@hono/zod-openapi";
import { refundReasons, refundStatuses, type refunds } from "../../db/refunds";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";
import { InvoiceIdSchema } from "./view";

export const ROLES = ["platform_admin"] as const;

const BodySchema = z
  .object({
    amount: z
      .number()
      .int()
      .min(1)
      .max(100_000_000)
      .optional()
      .openapi({ description: "Minor units; default: everything paid and not yet refunded.", example: 2500 }),
    reason: z.enum(refundReasons).openapi({ description: "A fixed category (no free text is sent to Stripe)." }),
  })
  .strict()
  .openapi("RefundRequest");

export const RefundSchema = z
  .object({
    id: z.string().openapi({ example: "rf_0a1b2c3d4e5f60718293a4b5c6d7e8f9" }),
    invoiceId: z.string(),
    amount: z.number().int().openapi({ description: "Minor units." }),
    reason: z.enum(refundReasons),
    status: z.enum(refundStatuses).openapi({ description: "`succeeded`: Stripe made it. `pending`: Stripe could not be reached (the office's outbox retries it), or Stripe is still processing it (Stripe's refund events settle it: `succeeded` or `failed`; the invoice read shows where it stands)." }),
    remaining: z.number().int().openapi({ description: "What can still be refunded of the invoice, in minor units." }),
    createdAt: z.string().datetime(),
  })
  .openapi("Refund");

export const route = createRoute({
  method: "post",
  path: "/v1/offices/{officeId}/invoices/{invoiceId}/refunds",
  operationId: "refundInvoice",
  tags: ["Invoices"],
  summary: "Refund a paid invoice, fully or in part (platform_admin)",
  description:
    "Required role: platform_admin. The invoice must have been collected through Stripe and be paid there. 201 when Stripe made the refund; 202 when it is `pending`: Stripe could not be reached (it is retried until it is made), or Stripe accepted it and is still processing it (its refund events settle it). A refund Stripe made can still fail later (its `refund.failed` event): it becomes `failed` and leaves `amountRefunded`. 409 when the invoice is void or not paid, is already fully refunded, the amount exceeds what remains, or Stripe refused the refund; 503 when Stripe cannot be reached to confirm the payment (nothing is recorded); 502 when Stripe refuses to read it.",
  security: [{ bearerAuth: [] }],
  request: {
    params: z.object({ officeId: OfficeIdSchema, invoiceId: InvoiceIdSchema }),
    body: { required: true, content: { "application/json": { schema: BodySchema } } },
  },
  responses: {
    201: { description: "The refund, made on Stripe.", content: { "application/json": { schema: RefundSchema } } },
    202: { description: "The refund, recorded and pending (Stripe unreachable and retried, or Stripe still processing it).", content: { "application/json": { schema: RefundSchema } } },
    ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 502, 503),
  },
});

const view = (r: typeof refunds.$inferSelect, remaining: number): z.infer<typeof RefundSchema> => ({
  id: r.id,
  invoiceId: r.invoiceId,
  amount: r.amount,
  reason: r.reason,
  status: r.status,
  remaining,
  createdAt: new Date(r.createdAt).toISOString(),
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId, invoiceId } = c.req.valid("param");
    const body = c.req.valid("json");
    const principal = await authorize(c, { action: "refund.request", roles: ROLES, officeId, targetIds: [invoiceId] });
    const { refund, remaining } = await officeObject(c.env, officeId).refund(
      { invoiceId, amount: body.amount ?? null, reason: body.reason },
      { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId },
    );
    if (refund.status === "failed") throw new ApiError("CONFLICT", `Stripe refused the refund (${refund.errorCode ?? "error"}); nothing was refunded.`);
    return refund.status === "succeeded" ? c.json(view(refund, remaining), 201) : c.json(view(refund, remaining), 202);
  });
}
