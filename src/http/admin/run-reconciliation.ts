import { createRoute, z } from "@hono/zod-openapi";
import { reconcileOffices } from "../../jobs/reconcile";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";

export const ROLES = ["platform_admin"] as const;

const ReportSchema = z
  .object({
    offices: z.number().int(),
    checked: z.number().int().openapi({ description: "Invoices compared with Stripe." }),
    changed: z.array(z.object({ officeId: z.string(), invoiceId: z.string(), from: z.string(), to: z.string() })),
    failed: z.array(z.object({ officeId: z.string(), invoiceId: z.string().nullable() })),
  })
  .openapi("ReconciliationReport");

export const route = createRoute({
  method: "post",
  path: "/v1/admin/reconciliation-runs",
  operationId: "runReconciliation",
  tags: ["Webhooks"],
  summary: "Reconcile offices' invoices with Stripe now (platform_admin)",
  description:
    "What the daily reconciliation does, for the given offices (at most 100): every invoice open on our side, or pushed and never confirmed, is compared with Stripe's state, and Stripe's state is applied where a webhook was missed. Answers what changed. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: true, content: { "application/json": { schema: z.object({ officeIds: z.array(OfficeIdSchema).min(1).max(100) }).strict().openapi("ReconciliationRequest") } } } },
  responses: {
    200: { description: "What was compared and changed.", content: { "application/json": { schema: ReportSchema } } },
    ...problemResponses(400, 401, 403, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeIds } = c.req.valid("json");
    const principal = await authorize(c, { action: "reconciliation.run", roles: ROLES });
    const report = await reconcileOffices(c.env, [...new Set(officeIds)]);
    await auditor(c.env, principal, c.var.requestId).platform({ action: "reconciliation.run", outcome: "succeeded", officeId: null, targetIds: officeIds, details: { checked: report.checked, changed: report.changed.length } });
    return c.json(report, 200);
  });
}
