import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { invoices } from "../../src/db/invoices";
import { newId } from "../../src/security/request-id";
import type { Role } from "../../src/security/jwt";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { seedOffice, seedPlan, testDb } from "../harness/seed";

type Scope = "own" | "other" | "none";
type Expect = Record<Role, Partial<Record<Scope, number>>>;

/**
 * Every /v1 route × every role × own/other office. `none`: routes not tied to an office.
 * 404 for another office's resource (no enumeration), 403 for a role that may not.
 */
const json = (body: unknown) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const version = { currency: "usd", baseFee: 1000, tiers: [{ upTo: null, unitAmount: 500 }] };
const platformOnly: Expect = { platform_admin: { none: 200 }, office_admin: { none: 403 }, office_viewer: { none: 403 }, clinical_system: { none: 403 } };

const officeReads: Expect = {
  platform_admin: { own: 200, other: 200 },
  office_admin: { own: 200, other: 404 },
  office_viewer: { own: 200, other: 404 },
  clinical_system: { own: 403, other: 404 },
};

const officeAdmins = (ok: number): Expect => ({
  platform_admin: { own: ok, other: ok },
  office_admin: { own: ok, other: 404 },
  office_viewer: { own: 403, other: 404 },
  clinical_system: { own: 403, other: 404 },
});

const matrix: Record<string, { request: (officeId: string, planId: string, invoiceId: string) => RequestInit & { path: string }; expect: Expect }> = {
  "POST /v1/offices/{officeId}/charges": {
    request: (officeId) => ({ path: `/v1/offices/${officeId}/charges`, ...json({ amount: 100, category: "training", mode: "invoice_now" }) }),
    expect: {
      platform_admin: { own: 201, other: 201 },
      office_admin: { own: 403, other: 404 },
      office_viewer: { own: 403, other: 404 },
      clinical_system: { own: 403, other: 404 },
    },
  },
  "POST /v1/offices/{officeId}/plan": { request: (officeId, planId) => ({ path: `/v1/offices/${officeId}/plan`, ...json({ planId }) }), expect: officeAdmins(200) },
  "POST /v1/offices/{officeId}/cancel": { request: (officeId) => ({ path: `/v1/offices/${officeId}/cancel`, ...json({}) }), expect: officeAdmins(200) },
  // Allowed, the request reaches the office, which is not set to cancel: 409.
  "POST /v1/offices/{officeId}/resume": { request: (officeId) => ({ path: `/v1/offices/${officeId}/resume`, method: "POST" }), expect: officeAdmins(409) },
  "GET /v1/offices/{officeId}/usage": { request: (officeId) => ({ path: `/v1/offices/${officeId}/usage` }), expect: officeReads },
  "GET /v1/offices/{officeId}/invoices": { request: (officeId) => ({ path: `/v1/offices/${officeId}/invoices` }), expect: officeReads },
  // Allowed, the request reaches the office: the seeded office has no draft, so no open cycle (409).
  "GET /v1/offices/{officeId}/invoices/upcoming": {
    request: (officeId) => ({ path: `/v1/offices/${officeId}/invoices/upcoming` }),
    expect: {
      platform_admin: { own: 409, other: 409 },
      office_admin: { own: 409, other: 404 },
      office_viewer: { own: 409, other: 404 },
      clinical_system: { own: 403, other: 404 },
    },
  },
  "GET /v1/offices/{officeId}/invoices/{invoiceId}": {
    request: (officeId, _p, invoiceId) => ({ path: `/v1/offices/${officeId}/invoices/${invoiceId}` }),
    expect: officeReads,
  },
  "POST /v1/offices/{officeId}/invoices/{invoiceId}/void": {
    request: (officeId, _p, invoiceId) => ({ path: `/v1/offices/${officeId}/invoices/${invoiceId}/void`, method: "POST" }),
    expect: { platform_admin: { own: 200, other: 200 }, office_admin: { own: 403, other: 404 }, office_viewer: { own: 403, other: 404 }, clinical_system: { own: 403, other: 404 } },
  },
  // Allowed, the request reaches the office: the seeded invoice was never collected through Stripe (409).
  "POST /v1/offices/{officeId}/invoices/{invoiceId}/refunds": {
    request: (officeId, _p, invoiceId) => ({ path: `/v1/offices/${officeId}/invoices/${invoiceId}/refunds`, ...json({ reason: "billing_error" }) }),
    expect: { platform_admin: { own: 409, other: 409 }, office_admin: { own: 403, other: 404 }, office_viewer: { own: 403, other: 404 }, clinical_system: { own: 403, other: 404 } },
  },
  // Allowed, the request reaches the office: the seeded invoice was never sent to Stripe (409).
  "POST /v1/offices/{officeId}/invoices/{invoiceId}/credit-notes": {
    request: (officeId, _p, invoiceId) => ({ path: `/v1/offices/${officeId}/invoices/${invoiceId}/credit-notes`, ...json({ amount: 100, reason: "order_change", memo: "service_credit" }) }),
    expect: { platform_admin: { own: 409, other: 409 }, office_admin: { own: 403, other: 404 }, office_viewer: { own: 403, other: 404 }, clinical_system: { own: 403, other: 404 } },
  },
  // Allowed, the request reaches the office: the seeded invoice is not a monthly one (404).
  "POST /v1/offices/{officeId}/invoices/{invoiceId}/patient-check": {
    request: (officeId, _p, invoiceId) => ({ path: `/v1/offices/${officeId}/invoices/${invoiceId}/patient-check`, ...json({ patientIds: ["pt-matrix"] }) }),
    expect: { platform_admin: { own: 404, other: 404 }, office_admin: { own: 403, other: 404 }, office_viewer: { own: 403, other: 404 }, clinical_system: { own: 404, other: 404 } },
  },
  // Allowed, the trace of a patient never seen is still an answer (state unknown, nothing counted).
  "POST /v1/offices/{officeId}/patient-billing": {
    request: (officeId) => ({ path: `/v1/offices/${officeId}/patient-billing`, ...json({ patientId: "pt-matrix" }) }),
    expect: { platform_admin: { own: 200, other: 200 }, office_admin: { own: 403, other: 404 }, office_viewer: { own: 403, other: 404 }, clinical_system: { own: 200, other: 404 } },
  },
  "POST /v1/offices/{officeId}/billing-portal": { request: (officeId) => ({ path: `/v1/offices/${officeId}/billing-portal`, method: "POST" }), expect: officeAdmins(201) },
  "POST /v1/offices/{officeId}/payment-method/setup-session": { request: (officeId) => ({ path: `/v1/offices/${officeId}/payment-method/setup-session`, method: "POST" }), expect: officeAdmins(201) },
  "POST /v1/plans": {
    request: () => ({ path: "/v1/plans", ...json({ code: `m-${crypto.randomUUID().slice(0, 8)}`, name: "Matrix", version }) }),
    expect: { ...platformOnly, platform_admin: { none: 201 } },
  },
  "POST /v1/offices": {
    request: (_o, planId) => ({
      path: "/v1/offices",
      ...json({ legalName: "Matrix Clinic", billingEmail: "billing@matrix.example", timeZone: "Europe/Berlin", billingAnchorDay: 1, planId }),
    }),
    expect: { ...platformOnly, platform_admin: { none: 201 } },
  },
  "POST /v1/admin/invoicing-runs": {
    request: (officeId) => ({ path: "/v1/admin/invoicing-runs", ...json({ dryRun: true, officeIds: [officeId] }) }),
    expect: platformOnly,
  },
  "GET /v1/plans": { request: () => ({ path: "/v1/plans" }), expect: platformOnly },
  "GET /v1/coupons": { request: () => ({ path: "/v1/coupons?archived=true" }), expect: platformOnly },
  "POST /v1/coupons": {
    request: () => ({ path: "/v1/coupons", ...json({ code: `M${crypto.randomUUID().replace(/-/g, "").slice(0, 12).toUpperCase()}`, percentOff: 5, duration: "once" }) }),
    expect: { ...platformOnly, platform_admin: { none: 201 } },
  },
  // Allowed: the coupon does not exist (404).
  "POST /v1/coupons/{code}/archive": { request: () => ({ path: "/v1/coupons/NOSUCHCOUPON/archive", method: "POST" }), expect: { ...platformOnly, platform_admin: { none: 404 } } },
  // Allowed, the request reaches the office: no such coupon (404).
  "POST /v1/offices/{officeId}/discount": {
    request: (officeId) => ({ path: `/v1/offices/${officeId}/discount`, ...json({ couponCode: "NOSUCHCOUPON" }) }),
    expect: { platform_admin: { own: 404, other: 404 }, office_admin: { own: 403, other: 404 }, office_viewer: { own: 403, other: 404 }, clinical_system: { own: 403, other: 404 } },
  },
  // Allowed, the request reaches the office: it has no discount (404).
  "DELETE /v1/offices/{officeId}/discount": {
    request: (officeId) => ({ path: `/v1/offices/${officeId}/discount`, method: "DELETE" }),
    expect: { platform_admin: { own: 404, other: 404 }, office_admin: { own: 403, other: 404 }, office_viewer: { own: 403, other: 404 }, clinical_system: { own: 403, other: 404 } },
  },
  "PATCH /v1/offices/{officeId}": {
    request: (officeId) => ({ path: `/v1/offices/${officeId}`, method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ legalName: "Matrix Clinic Renamed" }) }),
    expect: officeAdmins(200),
  },
  "GET /v1/offices": { request: (_o, planId) => ({ path: `/v1/offices?planId=${planId}` }), expect: platformOnly },
  "GET /v1/analytics/platform": { request: (_o, planId) => ({ path: `/v1/analytics/platform?from=2026-10&to=2026-11&planId=${planId}` }), expect: platformOnly },
  "GET /v1/offices/{officeId}/analytics": { request: (officeId) => ({ path: `/v1/offices/${officeId}/analytics?cycles=3` }), expect: officeReads },
  "GET /v1/exports/{dataset}": { request: (officeId) => ({ path: `/v1/exports/invoices?from=2026-11-01&to=2026-11-30&officeId=${officeId}` }), expect: platformOnly },
  "GET /v1/admin/webhook-events": { request: () => ({ path: "/v1/admin/webhook-events?limit=5" }), expect: platformOnly },
  // Allowed: the event does not exist (404).
  "POST /v1/admin/webhook-events/{eventId}/replay": {
    request: () => ({ path: "/v1/admin/webhook-events/evt_doesnotexist42/replay", method: "POST" }),
    expect: { ...platformOnly, platform_admin: { none: 404 } },
  },
  "GET /v1/admin/clinical-events": { request: () => ({ path: "/v1/admin/clinical-events?limit=5" }), expect: platformOnly },
  // Allowed: the event does not exist (404).
  "POST /v1/admin/clinical-events/{eventId}/replay": {
    request: () => ({ path: `/v1/admin/clinical-events/cev_${"0".repeat(32)}/replay`, method: "POST" }),
    expect: { ...platformOnly, platform_admin: { none: 404 } },
  },
  "POST /v1/admin/reconciliation-runs": { request: (officeId) => ({ path: "/v1/admin/reconciliation-runs", ...json({ officeIds: [officeId] }) }), expect: platformOnly },
  "GET /v1/plans/{planId}": { request: (_o, planId) => ({ path: `/v1/plans/${planId}` }), expect: platformOnly },
  "POST /v1/plans/{planId}/versions": {
    request: (_o, planId) => ({ path: `/v1/plans/${planId}/versions`, ...json(version) }),
    expect: { ...platformOnly, platform_admin: { none: 201 } },
  },
  "POST /v1/plans/{planId}/retire": { request: (_o, planId) => ({ path: `/v1/plans/${planId}/retire`, method: "POST" }), expect: platformOnly },
  "GET /v1/audit": {
    request: () => ({ path: "/v1/audit" }),
    expect: { platform_admin: { none: 200 }, office_admin: { none: 403 }, office_viewer: { none: 403 }, clinical_system: { none: 403 } },
  },
  "GET /v1/audit/verify": {
    request: () => ({ path: "/v1/audit/verify" }),
    expect: { platform_admin: { none: 200 }, office_admin: { none: 403 }, office_viewer: { none: 403 }, clinical_system: { none: 403 } },
  },
  "POST /v1/admin/data-keys/rotate": {
    // Scoped to a fresh office so the run's other tests keep their keys.
    request: (officeId) => ({ path: "/v1/admin/data-keys/rotate", method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ officeId }) }),
    expect: { platform_admin: { none: 200 }, office_admin: { none: 403 }, office_viewer: { none: 403 }, clinical_system: { none: 403 } },
  },
  "POST /v1/admin/patient-keys/rotate": {
    // Scoped to the matrix's office (at the current version already: nothing to move).
    request: (officeId) => ({ path: "/v1/admin/patient-keys/rotate", ...json({ officeId }) }),
    expect: platformOnly,
  },
  "POST /v1/admin/data-index/rotate": {
    request: (officeId) => ({ path: "/v1/admin/data-index/rotate", ...json({ officeId }) }),
    expect: platformOnly,
  },
  "GET /v1/offices/{officeId}": {
    request: (officeId) => ({ path: `/v1/offices/${officeId}` }),
    expect: {
      platform_admin: { own: 200, other: 200 },
      office_admin: { own: 200, other: 404 },
      office_viewer: { own: 200, other: 404 },
      clinical_system: { own: 403, other: 404 },
    },
  },
  "POST /v1/offices/{officeId}/patient-events": {
    request: (officeId) => ({ path: `/v1/offices/${officeId}/patient-events`, ...json({ events: [{ patientId: "pt-matrix", kind: "activate", occurredAt: new Date().toISOString(), idempotencyKey: crypto.randomUUID() }] }) }),
    expect: {
      platform_admin: { own: 200, other: 200 },
      office_admin: { own: 403, other: 404 },
      office_viewer: { own: 403, other: 404 },
      clinical_system: { own: 200, other: 404 },
    },
  },
  ...Object.fromEntries(
    (["activate", "deactivate"] as const).map((kind) => [
      `POST /v1/offices/{officeId}/patients/{patientId}/${kind}`,
      {
        request: (officeId: string) => ({
          path: `/v1/offices/${officeId}/patients/pt-matrix/${kind}`,
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
          body: JSON.stringify({ occurredAt: new Date().toISOString() }),
        }),
        expect: {
          platform_admin: { own: 200, other: 200 },
          office_admin: { own: 403, other: 404 },
          office_viewer: { own: 403, other: 404 },
          clinical_system: { own: 200, other: 404 },
        } satisfies Expect,
      },
    ]),
  ),
};

describe("role matrix", () => {
  it("covers every registered /v1 route", () => {
    const registered = createApp()
      .openAPIRegistry.definitions.filter((d) => d.type === "route")
      .map((d) => (d as { route: { method: string; path: string } }).route)
      .filter((r) => r.path.startsWith("/v1/"))
      .map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(Object.keys(matrix).sort()).toEqual(registered.sort());
  });

  for (const [route, { request, expect: expected }] of Object.entries(matrix)) {
    for (const [role, scopes] of Object.entries(expected) as [Role, Expect[Role]][]) {
      for (const [scope, status] of Object.entries(scopes) as [Scope, number][]) {
        it(`${route} as ${role} (${scope} office) → ${status}`, async () => {
          const db = testDb();
          const own = await seedOffice(db);
          const other = await seedOffice(db);
          const token = await mintToken(role, role === "platform_admin" ? [] : [own.id]);
          const { planId } = await seedPlan(db);
          const target = scope === "other" ? other : own;
          const invoiceId = newId("inv");
          await db.insert(invoices).values({ id: invoiceId, officeId: target.id, kind: "one_off", status: "open", currency: "usd", periodStart: "2026-11-01", periodEnd: "2026-12-01", updatedAt: Date.now() });
          const { path, ...init } = request(target.id, planId, invoiceId);
          const res = await SELF.fetch(`https://billing.test${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), ...bearer(token) } });
          // The reference documents the status the route answers.
          const [method, template] = route.split(" ") as [string, string];
          const doc = (await (await SELF.fetch("https://billing.test/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
          expect(Object.keys(doc.paths[template]![method.toLowerCase()]!.responses), `${route} documents ${res.status}`).toContain(String(res.status));
          if (status >= 400) {
            await expectProblem(res, status, ({ 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT" } as Record<number, string>)[status]!);
          } else {
            expect(res.status, await res.clone().text()).toBe(status);
          }
        });
      }
    }
  }

  it("a 404 for another office looks exactly like one for an office that does not exist", async () => {
    const db = testDb();
    const own = await seedOffice(db);
    const other = await seedOffice(db);
    const token = await mintToken("office_admin", [own.id]);
    const a = await SELF.fetch(`https://billing.test/v1/offices/${other.id}`, { headers: bearer(token) });
    const b = await SELF.fetch(`https://billing.test/v1/offices/off_ffffffffffffffffffffffffffffffff`, { headers: bearer(token) });
    const strip = (p: Record<string, unknown>) => ({ ...p, requestId: undefined });
    expect(strip(await expectProblem(a, 404, "NOT_FOUND"))).toEqual(strip(await expectProblem(b, 404, "NOT_FOUND")));
  });
});
