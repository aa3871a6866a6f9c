import { createRoute, z } from "@hono/zod-openapi";
import { platformAnalytics } from "../../analytics/platform";
import { MONTH, monthsBetween } from "../../analytics/months";
import { now } from "../../clock";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { ApiError, problemResponses } from "../problem";

export const ROLES = ["platform_admin"] as const;
/** The longest range one request answers. */
export const MAX_MONTHS = 36;

const QuerySchema = z
  .object({
    from: z.string().regex(MONTH, "must be a month YYYY-MM").openapi({ example: "2026-01", description: "First month (UTC calendar month; a cycle counts in the month of its first day)." }),
    to: z.string().regex(MONTH, "must be a month YYYY-MM").openapi({ example: "2026-11", description: "Last month, included." }),
    planId: z.string().regex(/^plan_[0-9a-f]{32}$/, "must be a plan id (plan_…)").optional().openapi({ description: "Only invoices priced with a version of this plan (and offices on it)." }),
  })
  .strict();

const money = (description: string) => z.number().int().openapi({ description, example: 0 });
const rate = (description: string) => z.number().nullable().openapi({ description, example: 0.97 });

export const MonthSchema = z.object({
  month: z.string().openapi({ example: "2026-11" }),
  currency: z.string().openapi({ example: "usd" }),
  mrr: money("Recurring lines (patients, base fee, proration, discounts) of the closed monthly invoices of cycles starting in the month."),
  mrrProjected: money("`mrr` plus the same lines of the cycles still open (drafts as they stand)."),
  arr: money("12 × `mrrProjected`."),
  activeOffices: z.number().int().openapi({ example: 0, description: "Offices with a non-void monthly invoice outside a trial for a cycle starting in the month." }),
  newOffices: z.number().int().openapi({ example: 0, description: "Offices onboarded in the month." }),
  churnedOffices: z.number().int().openapi({ example: 0, description: "Offices canceled in the month (and still canceled)." }),
  billablePatients: z.number().int().openapi({ example: 0, description: "Billable patients of the cycles starting in the month (a count)." }),
  averageRevenuePerOffice: z.number().int().nullable().openapi({ example: 0, description: "`mrrProjected` / `activeOffices`, rounded; null without active offices." }),
  invoiced: money("Totals including tax of the invoices finalized in the month (not voided; below-minimum ones carried or written off excluded)."),
  collected: money("What those invoices have been paid."),
  collectionRate: rate("`collected` / `invoiced`; null when nothing was invoiced."),
  receivables: money("Owed at the month's end (now, for the current month): finalized invoices (with tax) not paid or voided by then, less credit notes that lowered their amount due."),
  daysSalesOutstanding: z.number().nullable().openapi({ example: 12.5, description: "`receivables` / `invoiced` × the month's days (so far); null when nothing was invoiced." }),
  paymentsAttempted: z.number().int().openapi({ example: 0, description: "Invoices with a payment outcome from Stripe in the month (paid or failed)." }),
  paymentsFailed: z.number().int().openapi({ example: 0, description: "Of those, invoices with a failed payment in the month." }),
  failedPaymentRate: rate("`paymentsFailed` / `paymentsAttempted`."),
  refunds: money("Refunds Stripe made, by the month they were requested."),
  refundCount: z.number().int().openapi({ example: 0 }),
  credits: money("Credit notes made in the month (pending at Stripe or issued), whatever their settlement: lowering an open invoice, refunded or credited to the customer's balance."),
  creditCount: z.number().int().openapi({ example: 0 }),
});

const PlatformAnalyticsSchema = z
  .object({
    from: z.string().openapi({ example: "2026-01" }),
    to: z.string().openapi({ example: "2026-11" }),
    planId: z.string().nullable(),
    asOf: z.string().datetime().openapi({ example: "2026-11-23T10:00:00.000Z", description: "The clock the figures were computed at." }),
    months: z.array(MonthSchema).openapi({ description: "One entry per month and currency (never summed across currencies)." }),
    pastDue: z
      .array(
        z.object({
          currency: z.string().openapi({ example: "usd" }),
          "0-30": money("Owed on invoices 0–30 days past due."),
          "31-60": money("31–60 days."),
          "61-90": money("61–90 days."),
          over90: money("More than 90 days."),
          invoices: z.number().int().openapi({ example: 0 }),
        }),
      )
      .openapi({ description: "Past-due amounts now, by age." }),
    currentCycles: z
      .array(
        z.object({
          currency: z.string().openapi({ example: "usd" }),
          offices: z.number().int().openapi({ example: 0 }),
          billablePatients: z.number().int().openapi({ example: 0 }),
          mrrProjected: money("Recurring lines of every open cycle as they stand."),
          arrProjected: money("12 × `mrrProjected`."),
          total: money("The open cycles' draft totals."),
        }),
      )
      .openapi({ description: "The run rate: every office's current cycle, as it stands." }),
  })
  .openapi("PlatformAnalytics");

export const route = createRoute({
  method: "get",
  path: "/v1/analytics/platform",
  operationId: "getPlatformAnalytics",
  tags: ["Analytics"],
  summary: "Platform billing figures by month (platform_admin)",
  description: `MRR, ARR, active, new and churned offices, billable patients, average revenue per office, collection rate, days sales outstanding, failed-payment rate and refunds per month and currency; past-due amounts by age and the current cycles' run rate. Each figure's definition and SQL: docs/analytics.md. At most ${MAX_MONTHS} months a request. Required role: platform_admin.`,
  security: [{ bearerAuth: [] }],
  request: { query: QuerySchema },
  responses: {
    200: { description: "The figures.", content: { "application/json": { schema: PlatformAnalyticsSchema } } },
    ...problemResponses(400, 401, 403),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const months = monthsBetween(q.from, q.to).length;
    if (months === 0 || months > MAX_MONTHS) {
      throw new ApiError("VALIDATION_FAILED", `The range must run forward, ${MAX_MONTHS} months at most.`, { errors: [{ path: "to", message: `must be on or after from, within ${MAX_MONTHS} months` }] });
    }
    const principal = await authorize(c, { action: "analytics.platform", roles: ROLES });
    const figures = await platformAnalytics(c.var.db, { from: q.from, to: q.to, planId: q.planId, now: now() });
    await auditor(c.env, principal, c.var.requestId).platform({ action: "analytics.platform", outcome: "allowed", officeId: null, details: { from: q.from, to: q.to, planId: q.planId ?? null } });
    return c.json(figures, 200);
  });
}
