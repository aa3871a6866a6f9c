import { createRoute, z } from "@hono/zod-openapi";
import { startOfLocalDay } from "../../billing/calendar";
import { latestDateOnEarth, now, utcDate } from "../../clock";
import { dueOffices } from "../../jobs/invoicing-run";
import { officeObject } from "../../office/client";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { ApiError, problemResponses } from "../problem";

export const ROLES = ["platform_admin"] as const;
/** Offices closed at once by one request; more go through the cron's queue. */
const MAX_OFFICES = 500;
const CONCURRENCY = 8;

const BodySchema = z
  .object({
    date: z.string().date().optional().openapi({
      description: "Close every cycle that has ended by the start of this date in its office's time zone (today included: offices where today has begun). A date that has not begun in any time zone is refused.",
      example: "2026-12-01",
    }),
    at: z.string().datetime({ offset: true }).optional().openapi({ description: "Or: close every cycle that has ended by this instant (default: now)." }),
    dryRun: z.boolean().default(false).openapi({ description: "Report what would be invoiced; change nothing." }),
    officeIds: z.array(OfficeIdSchema).min(1).max(MAX_OFFICES).optional().openapi({ description: "Only these offices." }),
  })
  .strict()
  .openapi("InvoicingRunRequest");

const ResultSchema = z
  .object({
    at: z.string().datetime(),
    dryRun: z.boolean(),
    offices: z.array(
      z.object({
        officeId: z.string(),
        invoices: z.array(
          z.object({
            invoiceId: z.string().nullable().openapi({ description: "Null only in a dry run, for a missed cycle whose invoice the close would create." }),
            periodStart: z.string(),
            periodEnd: z.string(),
            total: z.number().int(),
          }),
        ),
      }),
    ),
  })
  .openapi("InvoicingRunResult");

export const route = createRoute({
  method: "post",
  path: "/v1/admin/invoicing-runs",
  operationId: "runInvoicing",
  tags: ["Admin"],
  summary: "Run the invoicing job now, for a date or an instant (platform_admin)",
  description:
    "Closes the cycles that have ended by the start of the given date in each office's time zone, or by the given instant (default: now), office by office through each office's Durable Object — the same close the hourly cron fans out through its queue, and as safe to repeat. `dryRun` lists the invoices the close would finalize, each computed as the close computes it (a catch-up lists every missed cycle), and changes nothing. At most 500 offices per request. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { "application/json": { schema: BodySchema } } } },
  responses: {
    200: { description: "What was (or would be) invoiced.", content: { "application/json": { schema: ResultSchema } } },
    ...problemResponses(400, 401, 403, 409, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const principal = await authorize(c, { action: "invoicing.run", roles: ROLES });
    if (body.date && body.at) throw new ApiError("VALIDATION_FAILED", "Give either date or at, not both.", { errors: [{ path: "at", message: "conflicts with date" }] });
    const current = now();
    if (body.date && body.date > latestDateOnEarth(current)) {
      throw new ApiError("VALIDATION_FAILED", `${body.date} has not begun in any time zone yet (it is ${utcDate(current)} in UTC): a run closes only cycles that have ended.`, {
        errors: [{ path: "date", message: "must not be after today" }],
      });
    }
    // A date closes, in each office's zone, what ended by that date's start (closeAt), never beyond now.
    const at = body.at ? Date.parse(body.at) : current;
    // Only cycles that have ended close (§6.3): a run cannot reach into the future.
    if (at > current + 60_000) {
      throw new ApiError("VALIDATION_FAILED", "A run closes cycles that have ended: the instant must not lie in the future.", {
        errors: [{ path: "at", message: "must not be in the future" }],
      });
    }
    const due = await dueOffices(c.var.db, at, { limit: MAX_OFFICES + 1, officeIds: body.officeIds, endedBy: body.date });
    const closeAt = (o: { timeZone: string }) => (body.date ? Math.min(at, startOfLocalDay(body.date, o.timeZone)) : at);
    if (due.length > MAX_OFFICES) throw new ApiError("CONFLICT", `More than ${MAX_OFFICES} offices are due; let the hourly run's queue close them, or name the offices.`);
    const audit = auditor(c.env, principal, c.var.requestId);
    await audit.platform({ action: "invoicing.run", outcome: "allowed", officeId: null, details: { at: new Date(at).toISOString(), dryRun: body.dryRun, offices: due.length } });

    if (body.dryRun) {
      const offices: { officeId: string; invoices: { invoiceId: string | null; periodStart: string; periodEnd: string; total: number }[] }[] = [];
      for (let i = 0; i < due.length; i += CONCURRENCY) {
        const chunk = due.slice(i, i + CONCURRENCY);
        const previews = await Promise.all(chunk.map((o) => officeObject(c.env, o.id).previewClose(closeAt(o))));
        chunk.forEach((o, j) => offices.push({ officeId: o.id, invoices: previews[j]!.closed }));
      }
      return c.json({ at: new Date(at).toISOString(), dryRun: true, offices }, 200);
    }
    const results: { officeId: string; invoices: { invoiceId: string; periodStart: string; periodEnd: string; total: number }[] }[] = [];
    for (let i = 0; i < due.length; i += CONCURRENCY) {
      const chunk = due.slice(i, i + CONCURRENCY);
      const closed = await Promise.all(
        chunk.map((o) => officeObject(c.env, o.id).closeCycles(closeAt(o), { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId })),
      );
      chunk.forEach((o, j) => results.push({ officeId: o.id, invoices: closed[j]!.closed.map(({ nextInvoiceId: _n, ...rest }) => rest) }));
    }
    return c.json({ at: new Date(at).toISOString(), dryRun: false, offices: results }, 200);
  });
}
