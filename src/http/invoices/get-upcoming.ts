import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { READ_ROLES } from "./get-usage";
import { InvoiceLineSchema, lineView } from "./view";

const TierSchema = z
  .object({
    from: z.number().int().openapi({ example: 51 }),
    to: z.number().int().nullable().openapi({ example: 200, description: "Last rank of the tier; null for the unbounded last tier." }),
    quantity: z.number().int().openapi({ example: 37, description: "Billable patients priced in this tier (after the allowance)." }),
    unitAmount: z.number().int().openapi({ example: 600, description: "Minor units per patient." }),
    amount: z.number().int().openapi({ example: 22200 }),
  })
  .openapi("UpcomingTier");

const UpcomingSchema = z
  .object({
    officeId: z.string().openapi({ example: "off_0f1e2d3c4b5a69788796a5b4c3d2e1f0" }),
    invoiceId: z.string().openapi({ example: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6", description: "The current cycle's draft, which the close finalizes." }),
    status: z.literal("draft"),
    currency: z.string().openapi({ example: "usd" }),
    periodStart: z.string().openapi({ example: "2026-11-01" }),
    periodEnd: z.string().openapi({ example: "2026-12-01" }),
    closesAt: z.string().datetime().openapi({ example: "2026-12-01T05:00:00.000Z", description: "When the cycle ends and the close finalizes the invoice." }),
    inTrial: z.boolean(),
    subtotal: z.number().int().openapi({ example: 75100 }),
    total: z.number().int().openapi({ example: 75100, description: "Minor units: what the close would bill now." }),
    lines: z.array(
      // A fresh object (not `.extend`): an extension is rendered as allOf with the line component, whose `id` is not nullable.
      z.object({ ...InvoiceLineSchema.shape, id: z.string().nullable().openapi({ description: "The draft's line id; null for a patients tier line the close would create." }) }),
    ),
    patients: z
      .object({
        billable: z.number().int().openapi({ example: 87, description: "Patients billable in the cycle by the events known now (a count; never an identifier)." }),
        included: z.number().int().openapi({ example: 0, description: "The plan's free allowance." }),
        tiers: z.array(TierSchema).openapi({ description: "The patients line per price tier: quantity × unit amount (empty in a trial cycle)." }),
      })
      .openapi({ description: "Aggregate counts only." }),
    cancelAtPeriodEnd: z.boolean().openapi({ description: "The subscription ends with this cycle: no next cycle." }),
    next: z
      .object({
        periodStart: z.string().openapi({ example: "2026-12-01" }),
        periodEnd: z.string().openapi({ example: "2027-01-01" }),
        planId: z.string().nullable(),
        planVersionId: z.string(),
        planChanged: z.boolean().openapi({ description: "A plan change scheduled for the period end applies from this cycle." }),
        currency: z.string(),
        baseFee: z.number().int().openapi({ example: 4900, description: "The next cycle's base fee, minor units." }),
        inTrial: z.boolean(),
        status: z.string().openapi({ example: "active", description: "The office's status in the next cycle." }),
      })
      .nullable()
      .openapi({ description: "The cycle the close opens, with any scheduled plan change applied; null when the office cancels at period end." }),
    statusAfterClose: z.string().openapi({ example: "active", description: "The office's status once the cycle closes (`canceled` when it cancels at period end)." }),
    minimumCharge: z.number().int().openapi({ example: 50, description: "Stripe's minimum charge in the invoice's currency, minor units (0: none known for it). docs/payment-plan.md §8.9." }),
    settlement: z.enum(["zero", "collect", "carry", "write_off"]).openapi({
      example: "collect",
      description:
        "What the close would do with this total: `collect` (sent to Stripe), `zero` (recorded as paid), `carry` (below the minimum charge: recorded, never sent, its total a `carried_balance` line on the next invoice), `write_off` (below the minimum with no next invoice: void).",
    }),
  })
  .openapi("UpcomingInvoice", {
    example: {
      officeId: "off_0f1e2d3c4b5a69788796a5b4c3d2e1f0",
      invoiceId: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6",
      status: "draft",
      currency: "usd",
      periodStart: "2026-11-01",
      periodEnd: "2026-12-01",
      closesAt: "2026-12-01T05:00:00.000Z",
      inTrial: false,
      subtotal: 75100,
      total: 75100,
      lines: [
        { id: null, kind: "patients", description: "Active patients 1–50 — Nov 2026", category: null, quantity: 50, unitAmount: 800, rankFrom: 1, rankTo: 50, amount: 40000, periodStart: "2026-11-01", periodEnd: "2026-12-01" },
        { id: null, kind: "patients", description: "Active patients 51–200 — Nov 2026", category: null, quantity: 37, unitAmount: 600, rankFrom: 51, rankTo: 200, amount: 22200, periodStart: "2026-11-01", periodEnd: "2026-12-01" },
        { id: "il_1a1b2c3d4e5f60718293a4b5c6d7e8f9", kind: "base_fee", description: "Platform fee — Nov 2026", category: null, quantity: 1, unitAmount: null, rankFrom: null, rankTo: null, amount: 4900, periodStart: "2026-11-01", periodEnd: "2026-12-01" },
        { id: "il_2a1b2c3d4e5f60718293a4b5c6d7e8f9", kind: "one_off", description: "Training", category: "training", quantity: 1, unitAmount: null, rankFrom: null, rankTo: null, amount: 8000, periodStart: null, periodEnd: null },
      ],
      patients: {
        billable: 87,
        included: 0,
        tiers: [
          { from: 1, to: 50, quantity: 50, unitAmount: 800, amount: 40000 },
          { from: 51, to: 200, quantity: 37, unitAmount: 600, amount: 22200 },
          { from: 201, to: null, quantity: 0, unitAmount: 400, amount: 0 },
        ],
      },
      cancelAtPeriodEnd: false,
      next: { periodStart: "2026-12-01", periodEnd: "2027-01-01", planId: "plan_5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1", planVersionId: "pv_6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2", planChanged: true, currency: "usd", baseFee: 9900, inTrial: false, status: "active" },
      statusAfterClose: "active",
      minimumCharge: 50,
      settlement: "collect",
    },
  });

export const route = createRoute({
  method: "get",
  path: "/v1/offices/{officeId}/invoices/upcoming",
  operationId: "getUpcomingInvoice",
  tags: ["Invoices"],
  summary: "Preview the current cycle's invoice as it would close now",
  description:
    "Required role: platform_admin, or office_admin / office_viewer of this office.\n\n" +
    "The close's own computation run now, changing nothing: the current cycle's lines with the patients billable by the events known now " +
    "(a count per price tier, never a patient), its totals, and the next cycle with a scheduled plan change applied (`next`), or `next: null` " +
    "when the office cancels at period end. Events reported before the close can still change it. 409 when the office has no open cycle (canceled).",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema }) },
  responses: {
    200: { description: "The upcoming invoice.", content: { "application/json": { schema: UpcomingSchema } } },
    ...problemResponses(400, 401, 403, 404, 409),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const principal = await authorize(c, { action: "invoice.upcoming", roles: READ_ROLES, officeId });
    const u = await officeObject(c.env, officeId).previewUpcoming({ actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    return c.json(
      {
        officeId,
        invoiceId: u.invoice.id,
        status: "draft" as const,
        currency: u.invoice.currency,
        periodStart: u.invoice.periodStart,
        periodEnd: u.invoice.periodEnd,
        closesAt: new Date(u.invoice.periodEndAt).toISOString(),
        inTrial: u.invoice.inTrial,
        subtotal: u.invoice.subtotal,
        total: u.invoice.total,
        lines: u.lines.map((l) => ({ ...lineView({ ...l, id: l.id ?? "" }), id: l.id })),
        patients: u.patients,
        cancelAtPeriodEnd: u.office.cancelAtPeriodEnd,
        next: u.next,
        statusAfterClose: u.statusAfterClose,
        minimumCharge: u.minimumCharge,
        settlement: u.settlement,
      },
      200,
    );
  });
}
