import { createRoute, z } from "@hono/zod-openapi";
import { isTimeZone } from "../../billing/calendar";
import { officeObject } from "../../office/client";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";
import { text } from "../text";
import { identifierKindNames, officeTextFindings } from "../../stripe/guard";
import { BillingAddressSchema, OfficeSchema, OfficeTaxSchema, officeView, TaxIdSchema } from "./view";

export const ROLES = ["platform_admin", "office_admin"] as const;

const BodySchema = z
  .object({
    legalName: text({ max: 200 }).optional().openapi({ example: "Lakeside Family Practice LLC" }),
    billingEmail: text({ max: 254 }).email().optional().openapi({ example: "accounts@lakeside.example" }),
    billingAddress: BillingAddressSchema.nullable().optional().openapi({ description: "The office's billing address; `null` removes it." }),
    taxId: TaxIdSchema.nullable().optional().openapi({ description: "The office's tax id (kept and shown here; not sent to Stripe); `null` removes it." }),
    timeZone: text({ max: 64 }).refine(isTimeZone, "must be an IANA time zone").optional().openapi({ description: "From the next cycle (docs/payment-plan.md §4.2).", example: "America/Chicago" }),
    collection: z
      .discriminatedUnion("method", [
        z.object({ method: z.literal("automatic") }).strict(),
        z.object({ method: z.literal("send_invoice"), daysUntilDue: z.number().int().min(1).max(90) }).strict(),
      ])
      .optional()
      .openapi({
        description:
          "Collection terms (platform_admin only): `automatic` — invoices follow the payment method on file (charged, or sent by e-mail when there is none); `send_invoice` — every invoice is sent for payment by e-mail, due `daysUntilDue` days after it is finalized (docs/payment-plan.md §10.4). Applies to invoices pushed from now on.",
        example: { method: "send_invoice", daysUntilDue: 30 },
      }),
    tax: OfficeTaxSchema.nullable()
      .optional()
      .openapi({
        description:
          "The office's tax (platform_admin only; docs/payment-plan.md §11): `stripe_tax` (needs the office's billing address) or a manual exclusive rate; `null` removes it. 409 when TAX_MODE does not offer the mode. Applies to invoices pushed from now on.",
        example: { mode: "manual", basisPoints: 825, name: "Sales tax" },
      }),
    billingAnchorDay: z.number().int().min(1).max(31).optional().openapi({ description: "From the next cycle, through one transition cycle of at least 15 days (docs/payment-plan.md §4.2).", example: 15 }),
  })
  .strict()
  .refine((b) => Object.values(b).some((v) => v !== undefined), "must change at least one field")
  // The legal name, billing e-mail and address cross to Stripe (the Customer): text the PHI guard
  // would block at the outbox is refused here, by the guard's own scan (docs/security.md).
  .superRefine((body, ctx) => {
    for (const f of officeTextFindings(body)) {
      ctx.addIssue({ code: "custom", path: f.field.split("."), message: `looks like it holds ${identifierKindNames[f.kind]}`, params: { code: "OFFICE_TEXT_LOOKS_LIKE_PHI" } });
    }
  })
  .openapi("UpdateOfficeRequest");

export const route = createRoute({
  method: "patch",
  path: "/v1/offices/{officeId}",
  operationId: "updateOffice",
  tags: ["Offices"],
  summary: "Change an office's profile or settings",
  description:
    "Legal name, billing e-mail and billing address apply at once and reach the office's Stripe customer through its outbox (exactly once, the latest winning); the tax id is kept and shown here. A new time zone or anchor day takes effect from the next cycle (`pendingSettings`), with a transition cycle for a new anchor day (docs/payment-plan.md §4.2); 409 when the office has no next cycle. `collection` (net terms) and `tax` (docs/payment-plan.md §11: 409 when TAX_MODE does not offer the mode, or Stripe Tax without a billing address) are platform_admin's only. Audited with the names of the fields changed. Required role: office_admin of this office, or platform_admin.",
  security: [{ bearerAuth: [] }],
  request: {
    params: z.object({ officeId: OfficeIdSchema }),
    body: { required: true, content: { "application/json": { schema: BodySchema } } },
  },
  responses: {
    200: { description: "The office after the change.", content: { "application/json": { schema: OfficeSchema } } },
    ...problemResponses(400, 401, 403, 404, 409, 413, 415),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const { officeId } = c.req.valid("param");
    const body = c.req.valid("json");
    // Collection terms are a commercial agreement: platform_admin only (403 to an office admin, audited).
    // So is the office's tax (§11.1): a matter of its jurisdiction and agreement.
    const principal = await authorize(
      c,
      body.collection !== undefined
        ? { action: "office.collection_terms", roles: ["platform_admin"], officeId }
        : body.tax !== undefined
          ? { action: "office.tax_settings", roles: ["platform_admin"], officeId }
          : { action: "office.update", roles: ROLES, officeId },
    );
    const office = await officeObject(c.env, officeId).updateProfile(body, { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId });
    return c.json(officeView(office), 200);
  });
}
