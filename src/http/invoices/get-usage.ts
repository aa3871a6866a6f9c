import { createRoute, z } from "@hono/zod-openapi";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";

export const READ_ROLES = ["platform_admin", "office_admin", "office_viewer"] as const;

const UsageSchema = z
  .object({
    officeId: z.string(),
    status: z.string().openapi({ example: "active" }),
    cycle: z.object({ start: z.string(), end: z.string() }).nullable(),
    currency: z.string().nullable(),
    billablePatients: z.number().int().openapi({ description: "Patients billable in the current cycle so far." }),
    projected: z
      .object({
        patients: z.number().int(),
        baseFee: z.number().int(),
        oneOff: z.number().int(),
        carried: z.number().int().openapi({ description: "Earlier invoices' totals below Stripe's minimum charge, carried to this one (docs/payment-plan.md §8.9)." }),
        total: z.number().int(),
      })
      .openapi({ description: "What the current cycle's invoice comes to if it closed now, minor units." }),
  })
  .openapi("Usage");

export const route = createRoute({
  method: "get",
  path: "/v1/offices/{officeId}/usage",
  operationId: "getUsage",
  tags: ["Invoices"],
  summary: "Current-cycle usage: billable patients so far and the projected amount",
  description: "Required role: platform_admin, or office_admin / office_viewer of this office.",
  security: [{ bearerAuth: [] }],
  request: { params: z.object({ officeId: OfficeIdSchema }) },
  responses: {
    200: { description: "The usage.", content: { "application/json": { schema: UsageSchema } } },
    ...problemResponses(400, 401, 403, 404),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const principal = await authorize(c, { action: "usage.read", roles: READ_ROLES, officeId });
    const { office, invoices, lines } = await officeObject(c.env, officeId).read({ kind: "usage" }, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    const draft = invoices[0];
    const sum = (kind: string) => lines.filter((l) => l.kind === kind).reduce((s, l) => s + l.amount, 0);
    return c.json(
      {
        officeId,
        status: office!.status,
        cycle: draft ? { start: draft.periodStart, end: draft.periodEnd } : null,
        currency: draft?.currency ?? null,
        billablePatients: lines.find((l) => l.kind === "patients")?.quantity ?? 0,
        projected: { patients: sum("patients"), baseFee: sum("base_fee") + sum("proration"), oneOff: sum("one_off"), carried: sum("carried_balance"), total: draft?.total ?? 0 },
      },
      200,
    );
  });
}
