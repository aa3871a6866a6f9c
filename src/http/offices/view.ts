import { z } from "@hono/zod-openapi";
import { officeStatuses, type offices } from "../../db/offices";

export const OfficeSchema = z
  .object({
    id: z.string().openapi({ example: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" }),
    legalName: z.string().openapi({ example: "Lakeside Family Practice LLC" }),
    billingEmail: z.string().email().openapi({ example: "billing@lakeside.example" }),
    timeZone: z.string().openapi({ example: "America/New_York" }),
    billingAnchorDay: z.number().int().min(1).max(31).openapi({ example: 1 }),
    status: z.enum(officeStatuses),
    planVersionId: z.string(),
    pendingPlanVersionId: z.string().nullable(),
    cancelAtPeriodEnd: z.boolean(),
    currentCycle: z
      .object({ start: z.string().date(), end: z.string().date() })
      .nullable()
      .openapi({ description: "Local dates; end exclusive. Null once the office is canceled: it has no current cycle." }),
    paymentMethod: z
      .object({
        status: z.enum(["none", "on_file"]),
        brand: z.string().nullable(),
        last4: z.string().nullable(),
        expMonth: z.number().int().nullable(),
        expYear: z.number().int().nullable(),
      })
      .openapi("OfficePaymentMethod", {
        description:
          "The office's default payment method for invoices, as Stripe last reported it (docs/payment-plan.md §10). `none`: invoices are sent for payment by e-mail with a due date; `on_file`: they are charged automatically. Add one through `POST /v1/offices/{officeId}/payment-method/setup-session`.",
      }),
    createdAt: z.string().datetime(),
  })
  .openapi("Office");

export function officeView(o: typeof offices.$inferSelect): z.infer<typeof OfficeSchema> {
  return {
    id: o.id,
    legalName: o.legalName,
    billingEmail: o.billingEmail,
    timeZone: o.timeZone,
    billingAnchorDay: o.billingAnchorDay,
    status: o.status,
    planVersionId: o.planVersionId,
    pendingPlanVersionId: o.pendingPlanVersionId,
    cancelAtPeriodEnd: o.cancelAtPeriodEnd,
    currentCycle: o.status === "canceled" ? null : { start: o.cycleStart, end: o.cycleEnd },
    paymentMethod: {
      status: o.paymentMethodStatus,
      brand: o.paymentMethodBrand,
      last4: o.paymentMethodLast4,
      expMonth: o.paymentMethodExpMonth,
      expYear: o.paymentMethodExpYear,
    },
    createdAt: new Date(o.createdAt).toISOString(),
  };
}
