import { SELF } from "cloudflare:test";
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { bearer, mintToken } from "../harness/auth";
import { monthlyInvoices, onboardOffice, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";
import { pushedOffice, stripeLog, stripeObject, syncStripe } from "../harness/stripe";

type Office = {
  id: string;
  legalName: string;
  billingEmail: string;
  timeZone: string;
  billingAnchorDay: number;
  billingAddress: Record<string, unknown> | null;
  taxId: { type: string; value: string } | null;
  pendingSettings: { timeZone: string; billingAnchorDay: number } | null;
  currentCycle: { start: string; end: string } | null;
};

const address = { line1: "200 Lakeshore Drive", line2: "Suite 4", city: "Chicago", state: "IL", postalCode: "60601", country: "US" };

async function patch(officeId: string, body: unknown, role: "platform_admin" | "office_admin" | "office_viewer" = "office_admin") {
  return SELF.fetch(`https://billing.test/v1/offices/${officeId}`, {
    method: "PATCH",
    headers: { ...bearer(await mintToken(role, role === "platform_admin" ? [] : [officeId])), "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function patched(officeId: string, body: unknown) {
  const res = await patch(officeId, body);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Office;
}

const auditOf = (requestId: string) => testDb().select().from(auditLog).where(sql`${auditLog.requestId} = ${requestId}`);

describe("PATCH /v1/offices/{officeId}: the profile", () => {
  it("changes the legal name, e-mail, address and tax id at once, audited by field names only", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    const res = await patch(officeId, { legalName: "Harbor Pediatrics Group PC", billingEmail: "accounts@harbor.example", billingAddress: address, taxId: { type: "us_ein", value: "12-3456789" } });
    expect(res.status, await res.clone().text()).toBe(200);
    const office = (await res.json()) as Office;
    expect(office).toMatchObject({ legalName: "Harbor Pediatrics Group PC", billingEmail: "accounts@harbor.example", billingAddress: address, taxId: { type: "us_ein", value: "12-3456789" }, pendingSettings: null });
    const rows = await auditOf(res.headers.get("x-request-id")!);
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([["office.update", "succeeded"]]);
    expect(rows[0]!.details).toEqual({ fields: ["legalName", "billingEmail", "billingAddress", "taxId"] });
    expect(JSON.stringify(rows[0])).not.toContain("Lakeshore");
    // Shown back on the office read.
    const read = (await (await SELF.fetch(`https://billing.test/v1/offices/${officeId}`, { headers: bearer(await mintToken("office_viewer", [officeId])) })).json()) as Office;
    expect(read).toMatchObject({ legalName: "Harbor Pediatrics Group PC", billingAddress: address });
    // The same values again change nothing: no audit entry.
    const again = await patch(officeId, { legalName: "Harbor Pediatrics Group PC" });
    expect(again.status).toBe(200);
    expect(await auditOf(again.headers.get("x-request-id")!)).toEqual([]);
    // null removes the address and the tax id.
    expect(await patched(officeId, { billingAddress: null, taxId: null })).toMatchObject({ billingAddress: null, taxId: null });
  });

  it("reaches the Stripe customer through the outbox, once per version, the latest winning", async () => {
    const { officeId, customerId } = await pushedOffice();
    await patched(officeId, { legalName: "Harbor Pediatrics Group PC", billingAddress: address });
    await patched(officeId, { billingEmail: "accounts@harbor.example" });
    await syncStripe(officeId);
    await syncStripe(officeId);
    const customer = await stripeObject<Stripe.Customer>(`/v1/customers/${customerId}`);
    expect(customer).toMatchObject({
      name: "Harbor Pediatrics Group PC",
      email: "accounts@harbor.example",
      address: { line1: "200 Lakeshore Drive", line2: "Suite 4", city: "Chicago", state: "IL", postal_code: "60601", country: "US" },
    });
    // Each version at most once, in order, the last one sent (the office's alarm may have sent
    // version 2 between the two changes, or only version 3 after both).
    const keys = (await stripeLog(officeId)).filter((r) => r.operation === "customerUpdate" && r.status === "succeeded").map((u) => u.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.at(-1)).toBe(`customer_${officeId}_profile_3`);
    expect([[`customer_${officeId}_profile_3`], [`customer_${officeId}_profile_2`, `customer_${officeId}_profile_3`]]).toContainEqual(keys);
    // Removing the address clears it on Stripe too.
    await patched(officeId, { billingAddress: null });
    await syncStripe(officeId);
    expect((await stripeObject<Stripe.Customer>(`/v1/customers/${customerId}`)).address).toBeNull();
    // Nothing left to send: another run sends nothing.
    const before = (await stripeLog(officeId)).length;
    await syncStripe(officeId);
    expect((await stripeLog(officeId)).length).toBe(before);
  });

  it("a customer created after a change carries it, and nothing else is sent", async () => {
    // No setup fee: nothing goes to Stripe until the first close finalizes an invoice.
    const officeId = await onboardOffice({ startsOn: "2026-09-01", plan: { baseFee: 4900 } });
    await patched(officeId, { billingAddress: address });
    await runInvoicing([officeId], "2026-10-01T06:00:00Z");
    await syncStripe(officeId);
    const log = await stripeLog(officeId);
    const customerId = log.find((r) => r.operation === "customer")!.stripeIds![0]!;
    expect((await stripeObject<Stripe.Customer>(`/v1/customers/${customerId}`)).address).toMatchObject({ line1: "200 Lakeshore Drive", postal_code: "60601" });
    expect(log.filter((r) => r.operation === "customerUpdate")).toEqual([]);
  });

  it("refuses bad input with 400 and roles that may not with 403/404", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    await expectProblem(await patch(officeId, {}), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { status: "active" }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { legalName: "Harbor\u202Eevil" }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { billingEmail: "not-an-email" }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { billingAddress: { ...address, country: "USA" } }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { billingAddress: { ...address, country: "ZZ" } }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { billingAddress: { ...address, postalCode: "6 0601!" } }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { billingAddress: { line1: "x" } }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { taxId: { type: "ssn", value: "123456789" } }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { timeZone: "Mars/Olympus" }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, { billingAnchorDay: 32 }), 400, "VALIDATION_FAILED");
    await expectProblem(await patch(officeId, "{not json"), 400, "BAD_REQUEST");
    await expectProblem(await patch(officeId, { legalName: "x" }, "office_viewer"), 403, "FORBIDDEN");
    const other = await onboardOffice({ startsOn: "2026-11-02" });
    const res = await SELF.fetch(`https://billing.test/v1/offices/${other}`, {
      method: "PATCH",
      headers: { ...bearer(await mintToken("office_admin", [officeId])), "content-type": "application/json" },
      body: JSON.stringify({ legalName: "Not Mine LLC" }),
    });
    await expectProblem(res, 404, "NOT_FOUND");
  });
});

describe("PATCH /v1/offices/{officeId}: time zone and anchor day from the next cycle (§4.2)", () => {
  it("keeps the change pending; setting the current values clears it", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    const office = await patched(officeId, { billingAnchorDay: 20, timeZone: "America/Chicago" });
    expect(office).toMatchObject({ timeZone: "America/New_York", billingAnchorDay: 1, pendingSettings: { timeZone: "America/Chicago", billingAnchorDay: 20 }, currentCycle: { start: "2026-11-01", end: "2026-12-01" } });
    expect((await patched(officeId, { timeZone: "America/New_York" })).pendingSettings).toEqual({ timeZone: "America/New_York", billingAnchorDay: 20 });
    expect((await patched(officeId, { billingAnchorDay: 1 })).pendingSettings).toBeNull();
  });

  it("the close applies it: a transition cycle Oct 1 – Oct 20 with its prorated fee, then cycles on the 20th", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01", plan: { baseFee: 4900 } });
    await patched(officeId, { billingAnchorDay: 20 });
    await runInvoicing([officeId], "2026-10-01T06:00:00Z");
    const read = (await (await SELF.fetch(`https://billing.test/v1/offices/${officeId}`, { headers: bearer(await mintToken("platform_admin")) })).json()) as Office;
    expect(read).toMatchObject({ billingAnchorDay: 20, pendingSettings: null, currentCycle: { start: "2026-10-01", end: "2026-10-20" } });
    await runInvoicing([officeId], "2026-10-20T06:00:00Z");
    const invoices = await monthlyInvoices(officeId);
    expect(invoices.map((i) => [i.periodStart, i.periodEnd, i.status, i.lines.find((l) => l.kind === "base_fee")?.amount])).toEqual([
      ["2026-09-01", "2026-10-01", "open", 4900],
      // 4,900 × 19 ÷ 30 (Sep 20 – Oct 20) = 3,103.3 → 3,103
      ["2026-10-01", "2026-10-20", "open", 3103],
      ["2026-10-20", "2026-11-20", "draft", 4900],
    ]);
  });

  it("a new zone moves the next cycle's end to midnight there, from the instant the last one ended", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01" });
    await patched(officeId, { timeZone: "Europe/Berlin" });
    await runInvoicing([officeId], "2026-10-01T06:00:00Z");
    const [, next] = await monthlyInvoices(officeId);
    // Sep 30 ended at 04:00Z (EDT); the next cycle ends at midnight in Berlin (22:00Z, CEST).
    expect(next).toMatchObject({ periodStart: "2026-10-01", periodEnd: "2026-11-01", periodStartAt: Date.parse("2026-10-01T04:00:00Z"), periodEndAt: Date.parse("2026-10-31T23:00:00Z") });
  });

  it("is refused (409) for an office with no next cycle", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    const cancel = await SELF.fetch(`https://billing.test/v1/offices/${officeId}/cancel`, {
      method: "POST",
      headers: { ...bearer(await mintToken("office_admin", [officeId])), "content-type": "application/json" },
      body: JSON.stringify({ when: "period_end" }),
    });
    expect(cancel.status).toBe(200);
    await expectProblem(await patch(officeId, { billingAnchorDay: 15 }), 409, "CONFLICT");
    // The profile can still change.
    expect((await patched(officeId, { legalName: "Harbor Pediatrics Closing PC" })).legalName).toBe("Harbor Pediatrics Closing PC");
  });
});

describe("PATCH /v1/offices/{officeId}: text the PHI guard would block is refused at the door", () => {
  it("names the field and the kind, never the value, and stores nothing", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    for (const [body, field] of [
      [{ legalName: "Harbor 123-45-6789" }, "legalName"],
      [{ legalName: "Harbor １２３ ４５ ６７８９" }, "legalName"],
      [{ billingEmail: "123-45-6789@harbor.example" }, "billingEmail"],
      [{ billingAddress: { ...address, line2: "Attn MRN 4471" } }, "billingAddress.line2"],
      [{ billingAddress: { ...address, city: "Call (555) 123-4567" } }, "billingAddress.city"],
    ] as const) {
      const res = await patch(officeId, body);
      const problem = await expectProblem(res, 400, "OFFICE_TEXT_LOOKS_LIKE_PHI");
      expect((problem.errors as { path: string }[]).map((e) => e.path)).toEqual([field]);
      expect(JSON.stringify(problem)).not.toMatch(/6789|4471|4567/);
    }
    // The office's own address (a street and a ZIP in its fields) passes.
    expect((await patched(officeId, { billingAddress: address })).billingAddress).toEqual(address);
    const read = (await (await SELF.fetch(`https://billing.test/v1/offices/${officeId}`, { headers: bearer(await mintToken("platform_admin")) })).json()) as Office;
    expect(read.legalName).toBe("Harbor Pediatrics PC");
  });
});
