import { createRoute, z } from "@hono/zod-openapi";
import { officeAnalytics } from "../../analytics/office";
import { now } from "../../clock";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";

export const ROLES = ["platform_admin", "office_admin", "office_viewer"] as const;

const QuerySchema = z
  .object({
    cycles: z.coerce.number().int().min(1).max(36).default(12).openapi({ description: "How many cycles, newest first (the current one included)." }),
  })
  .strict();

const money = (description: string) => z.number().int().openapi({ description, example: 0 });

const OfficeAnalyticsSchema = z
  .object({
    officeId: z.string().openapi({ example: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" }),
    asOf: z.string().datetime().openapi({ example: "2026-11-23T10:00:00.000Z" }),
    cycles: z.array(
      z.object({
        invoiceId: z.string().openapi({ example: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6" }),
        periodStart: z.string().openapi({ example: "2026-11-01" }),
        periodEnd: z.string().openapi({ example: "2026-12-01" }),
        status: z.string().openapi({ example: "paid", description: "The monthly invoice's status (`draft`: the current cycle)." }),
        currency: z.string().openapi({ example: "usd" }),
        inTrial: z.boolean(),
        billablePatients: z.number().int().openapi({ example: 87, description: "A count; never an identifier." }),
        includedPatients: z.number().int().openapi({ example: 0 }),
        invoiceTotal: money("The cycle's monthly invoice total (so far, for the current cycle)."),
        otherInvoices: money("Setup and one-off invoices issued within the cycle."),
        spend: money("`invoiceTotal` + `otherInvoices`."),
        amountPaid: money("Paid on those invoices."),
        amountRefunded: money("Refunded on those invoices."),
      }),
    ),
    current: z
      .object({
        periodStart: z.string().openapi({ example: "2026-11-01" }),
        periodEnd: z.string().openapi({ example: "2026-12-01" }),
        currency: z.string().openapi({ example: "usd" }),
        elapsedDays: z.number().openapi({ example: 22.4 }),
        remainingDays: z.number().openapi({ example: 7.6 }),
        soFar: z.object({ billablePatients: z.number().int().openapi({ example: 87 }), total: money("The draft's total as it stands.") }),
        projection: z.object({
          billablePatients: z.number().int().openapi({ example: 90, description: "So far plus the arrivals after the cycle's first day, at their rate so far, for the days left." }),
          total: money("The draft's total with the projected patients priced by its plan version's tiers."),
          arrivalsPerDay: z.number().openapi({ example: 0.14 }),
        }),
      })
      .nullable()
      .openapi({ description: "The current cycle; null when the office has none open." }),
  })
  .openapi("OfficeAnalytics");

export const route = createRoute({
  method: "get",
  path: "/v1/offices/{officeId}/analytics",
  operationId: "getOfficeAnalytics",
  tags: ["Analytics"],
  summary: "An office's billable patients and spend per cycle, the current cycle and its projection",
  description: "Definitions: docs/analytics.md. Required role: platform_admin, or office_admin / office_viewer of this office.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema }), query: QuerySchema },
  responses: {
    200: { description: "The office's figures.", content: { "application/json": { schema: OfficeAnalyticsSchema } } },
    ...problemResponses(400, 401, 403, 404),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const q = c.req.valid("query");
    const principal = await authorize(c, { action: "analytics.office", roles: ROLES, officeId });
    const figures = await officeAnalytics(c.var.db, officeId, q.cycles, now());
    if (!figures) throw new ApiError("NOT_FOUND", "No such office.");
    await auditor(c.env, principal, c.var.requestId).office(officeId, { action: "analytics.office", outcome: "allowed", officeId, details: { cycles: q.cycles } });
    return c.json(figures, 200);
  });
}
