import type { App } from "../context";

/** The OpenAPI document's header: what the API is, how to authenticate, the error model. */
export const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: {
    title: "Office billing API",
    version: "1.0.0",
    description: [
      "The billing API of a healthcare SaaS: medical offices are billed per active patient per month, plus one-off charges, through Stripe.",
      "",
      "**Authentication.** Every `/v1` route takes `Authorization: Bearer <JWT>` with the claims `sub`, `role` (`platform_admin`, `office_admin`, `office_viewer`, `clinical_system`) and `office_ids`. Each operation names the roles it allows. Another office's resource answers 404; a role that may not, 403.",
      "",
      "**Trying it locally.** `npm run dev` prints a token for each role when it is ready (`npm run token -- --role platform_admin` mints another); press **Authorize** on this page and paste the token without `Bearer `. In production, tokens come from the identity provider.",
      "",
      "**Errors.** Every error is `application/problem+json` (RFC 9457): `{ type, title, status, detail, code, requestId }`, plus `errors` for validation failures. Every response carries `X-Request-Id`.",
      "",
      "**Patients.** The clinical system names patients by its own ids in the path; they are replaced at once by keyed pseudonyms and never stored, logged or sent to Stripe.",
    ].join("\n"),
    license: { name: "Proprietary", url: "https://docs.office-billing.dev/license" },
  },
  servers: [{ url: "/", description: "This deployment" }],
  tags: [
    { name: "Health", description: "Liveness and readiness of the API and its dependencies (public)." },
    { name: "Plans", description: "Price plans and their immutable versions (platform_admin)." },
    { name: "Offices", description: "Onboarding, the subscription, the Stripe billing portal." },
    { name: "Patients", description: "Activations and deactivations reported by the clinical system; the patient check and trace (the internal tier)." },
    { name: "Invoices", description: "Usage, invoices, one-off charges, voids and refunds." },
    { name: "Webhooks", description: "Stripe's events, their records and reconciliation." },
    { name: "Discounts", description: "Coupons and the discounts they apply to offices." },
    { name: "Analytics", description: "Platform and office billing figures (docs/analytics.md)." },
    { name: "Exports", description: "Invoices, lines, payments and refunds for accountants, as CSV or NDJSON." },
    { name: "Clinical events", description: "Signed events to the clinical application (office status, invoices, cycle closes; ids and counts only) and their deliveries (platform_admin). docs/clinical-events.md." },
    { name: "Admin", description: "Invoicing runs and key rotation (platform_admin)." },
    { name: "Audit", description: "The hash-chained audit trail (platform_admin)." },
  ],
} as const;

const documents = new WeakMap<App, unknown>();

/** The OpenAPI 3.1 document of the app's routes, generated from their zod schemas (once per app). */
export function openApiDocument(app: App) {
  let doc = documents.get(app);
  if (!doc) {
    app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", bearerFormat: "JWT" });
    doc = app.getOpenAPI31Document(OPENAPI_INFO as unknown as Parameters<App["getOpenAPI31Document"]>[0]);
    documents.set(app, doc);
  }
  return doc as { paths: Record<string, Record<string, { description?: string; responses: Record<string, unknown>; requestBody?: unknown }>> } & Record<string, unknown>;
}
