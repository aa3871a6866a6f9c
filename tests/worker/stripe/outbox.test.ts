import type Stripe from "stripe";
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { auditLog } from "../../../src/db/audit";
import { offices } from "../../../src/db/offices";
import { invoices } from "../../../src/db/invoices";
import { bearer, mintToken } from "../../harness/auth";
import { monthlyInvoices, onboardOffice, reportEvent, runInvoicing } from "../../harness/billing";
import { expectProblem } from "../../harness/problem";
import { testDb } from "../../harness/seed";
import { sweepStripeWork } from "../../../src/jobs/stripe-sweep";
import { clearFaultRule, emulatorLog, faultRule, invoiceRows, letters, stripeLog, stripeObject, pushedOffice, syncStripe } from "../../harness/stripe";

const api = "https://billing.test/v1";
const admin = async () => ({ ...bearer(await mintToken("platform_admin")), "content-type": "application/json" });
const stub = (officeId: string) => env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));

type StripeInvoice = Stripe.Invoice; // read through the SDK's types for the pinned version

/** The Stripe id of an internal invoice, as the request log recorded its creation. */
async function stripeIdOf(officeId: string, invoiceId: string) {
  const row = (await stripeLog(officeId)).find((r) => r.idempotencyKey === `invoice_${invoiceId}_create` && r.status === "succeeded");
  return row?.stripeIds?.[0] ?? null;
}

/** An office on a setup-fee plan, with its setup invoice pushed to Stripe. */
async function officeWithPushedSetupInvoice(opts: { billingEmail?: string } = {}) {
  const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 25_000 }, ...opts });
  await syncStripe(officeId);
  const setup = (await invoiceRows(officeId)).find((i) => i.kind === "setup")!;
  expect(setup).toMatchObject({ status: "open", total: 25_000, stripeState: "finalized" });
  return { officeId, setup };
}

describe("the Stripe outbox of an office", () => {
  it("pushes the setup-fee invoice after onboarding: customer once, then three calls, ids encrypted at rest", async () => {
    const { officeId, setup } = await officeWithPushedSetupInvoice();
    const log = await stripeLog(officeId);
    expect(log.map((r) => [r.operation, r.status])).toEqual([
      ["customer", "succeeded"],
      ["invoice", "succeeded"],
      ["addLines", "succeeded"],
      ["finalize", "succeeded"],
    ]);
    const stripeId = (await stripeIdOf(officeId, setup.id))!;
    const onStripe = await stripeObject<StripeInvoice>(`/v1/invoices/${stripeId}`);
    expect(onStripe.amount_due).toBe(25_000);
    expect(onStripe.metadata).toMatchObject({ office_ref: officeId, invoice_ref: setup.id });
    expect(onStripe.lines.data.map((l) => [l.description, l.amount])).toEqual([["Setup fee", 25_000]]);
    // No payment method on file yet (docs/payment-plan.md §10): sent for payment by e-mail, due in 14 days.
    expect(onStripe).toMatchObject({ collection_method: "send_invoice", attempt_count: 0 });
    const [pushed] = (await invoiceRows(officeId)).filter((i) => i.id === setup.id);
    expect(pushed).toMatchObject({ collectionMethod: "send_invoice", dueAt: onStripe.due_date! * 1000 });
    expect(onStripe.due_date! - onStripe.created).toBe(14 * 86400);
    // Stripe ids are stored encrypted, with a keyed index; the plaintext id is nowhere in the row.
    const [office] = await testDb().select().from(offices).where(eq(offices.id, officeId));
    expect(office!.stripeCustomerRef).toMatch(/^[^.]+\.[^.]+\.[^.]+$/);
    expect(JSON.stringify(office)).not.toMatch(/cus_/);
    const [row] = (await invoiceRows(officeId)).filter((i) => i.id === setup.id);
    expect(JSON.stringify(row)).not.toContain(stripeId);
    // Run again: nothing left to do, no request made.
    const again = await syncStripe(officeId);
    expect(again).toMatchObject({ pushed: [], retrying: [], failed: [] });
    expect(await stripeLog(officeId)).toHaveLength(4);
    const audit = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "stripe.invoice_pushed")));
    expect(audit).toHaveLength(1);
    expect(audit[0]!.details).toMatchObject({ total: 25_000, stripeCalls: 3 });
  });

  it("pushes a closed month in three invoice calls whatever the patient count, totals equal", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-09-01" });
    await Promise.all(Array.from({ length: 55 }, (_, i) => reportEvent(officeId, `month-${i}`, "activate", "2026-09-03T10:00:00Z")));
    await runInvoicing([officeId], "2026-10-01T12:00:00Z");
    await syncStripe(officeId);
    const [september] = await monthlyInvoices(officeId);
    expect(september).toMatchObject({ status: "open", total: 50 * 800 + 5 * 600 + 4900, stripeState: "finalized" });
    const calls = (await stripeLog(officeId)).filter((r) => r.idempotencyKey?.includes(september!.id));
    expect(calls.map((r) => r.operation)).toEqual(["invoice", "addLines", "finalize"]);
    const onStripe = await stripeObject<StripeInvoice>(`/v1/invoices/${calls[0]!.stripeIds![0]}`);
    expect(onStripe.amount_due).toBe(september!.total);
    // A line per tier, quantity × unit price on Stripe's invoice too (§6.1).
    expect(onStripe.lines.data.map((l) => [l.description, l.quantity, l.pricing?.unit_amount_decimal ?? null, l.amount])).toEqual([
      ["Active patients 1–50 — Sep 2026", 50, "800", 40_000],
      ["Active patients 51–200 — Sep 2026", 5, "600", 3_000],
      ["Platform fee — Sep 2026", 1, "4900", 4900],
    ]);
    // The open October draft is not sent.
    const october = (await monthlyInvoices(officeId))[1]!;
    expect(october).toMatchObject({ status: "draft", stripeState: "none" });
  }, 240_000); // heavy: many requests; generous for a busy machine

  it("survives a Stripe outage: retries are scheduled on the alarm, and the push resumes by itself exactly once", async () => {
    const token = `outage${letters()}`;
    await faultRule(token, ["500"]);
    const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 9_900 }, legalName: `Clinic ${token}` });
    const first = await syncStripe(officeId);
    const setup = (await invoiceRows(officeId)).find((i) => i.kind === "setup")!;
    expect(first.retrying).toContain(setup.id);
    const retry = first.pendingRetries.find((r) => r.item === `push:${setup.id}`)!;
    expect(retry).toMatchObject({ attempts: 1, lastError: "api_error" });
    expect(retry.nextAt).toBeGreaterThan(Date.now() + 10_000);
    // Each attempt was a request, and each is in the log: three tries with backoff, all refused.
    expect((await stripeLog(officeId)).map((r) => [r.operation, r.status, r.httpStatus])).toEqual([
      ["customer", "failed", 500],
      ["customer", "failed", 500],
      ["customer", "failed", 500],
    ]);
    expect(setup.stripeState).toBe("none");
    const alarmAt = await runInDurableObject(stub(officeId), (_o, state) => state.storage.getAlarm());
    expect(alarmAt).toBe(retry.nextAt);

    // Stripe recovers; time passes to the retry (the schedule is moved, not the clock), the alarm fires.
    await clearFaultRule(token);
    await runInDurableObject(stub(officeId), (_o, state) => void state.storage.sql.exec("UPDATE stripe_retry SET next_at = 0"));
    expect(await runDurableObjectAlarm(stub(officeId))).toBe(true);
    const pushed = (await invoiceRows(officeId)).find((i) => i.id === setup.id)!;
    expect(pushed.stripeState).toBe("finalized");
    const creates = (await emulatorLog()).filter((r) => r.path === "/v1/invoices" && r.body.includes(setup.id) && r.status === 200 && !r.replayed);
    expect(creates).toHaveLength(1);
    expect((await syncStripe(officeId)).pendingRetries).toEqual([]);
  });

  it("resumes a push interrupted after the draft: asks Stripe where it stands, never a second invoice", async () => {
    // A fee no other test uses marks this invoice's add_lines request: refused until cleared.
    const fee = 10_000 + (crypto.getRandomValues(new Uint32Array(1))[0]! % 80_000);
    const marker = `lines[0][amount]=${fee}&`;
    await faultRule(marker, ["500"]);
    const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: fee } });
    await syncStripe(officeId);
    const setupId = (await invoiceRows(officeId)).find((i) => i.kind === "setup")!.id;
    expect((await invoiceRows(officeId)).find((i) => i.id === setupId)!.stripeState).toBe("draft_created");
    await clearFaultRule(marker);
    await runInDurableObject(stub(officeId), (_o, state) => void state.storage.sql.exec("UPDATE stripe_retry SET next_at = 0"));
    await syncStripe(officeId);
    const row = (await invoiceRows(officeId)).find((i) => i.id === setupId)!;
    expect(row.stripeState).toBe("finalized");
    const ops = (await stripeLog(officeId)).filter((r) => r.status === "succeeded").map((r) => r.operation);
    expect(ops.filter((o) => o === "invoice")).toHaveLength(1);
    expect(ops.slice(-3)).toEqual(["readInvoice", "addLines", "finalize"]);
  });

  it("fails closed when the office's own data carries an identifier: nothing sent, invoice marked, audited", async () => {
    // Onboarding refuses such a name at the door (OFFICE_TEXT_LOOKS_LIKE_PHI, onboarding.test.ts);
    // here it reached the database around the API (an office stored before that rule), before
    // anything was pushed: the guard at the outbox still blocks it.
    const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 0 } });
    await testDb().update(offices).set({ legalName: "Dr Roe, call (555) 201-8899" }).where(eq(offices.id, officeId));
    const charge = await SELF.fetch(`https://billing.test/v1/offices/${officeId}/charges`, {
      method: "POST",
      headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
      body: JSON.stringify({ amount: 5_000, category: "setup", mode: "invoice_now" }),
    });
    expect(charge.status, await charge.clone().text()).toBe(201);
    const { invoiceId } = (await charge.json()) as { invoiceId: string };
    const report = await syncStripe(officeId);
    const setup = (await invoiceRows(officeId)).find((i) => i.id === invoiceId)!;
    expect(report.failed).toContain(setup.id);
    expect(setup).toMatchObject({ stripeState: "failed", stripeError: "phi_egress_blocked" });
    expect((await stripeLog(officeId)).map((r) => [r.operation, r.status])).toEqual([["customer", "blocked"]]);
    const actions = (await testDb().select().from(auditLog).where(eq(auditLog.officeId, officeId))).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["phi_egress_blocked", "stripe.push_failed"]));
    expect(JSON.stringify(await emulatorLog())).not.toContain("201-8899");
    // A failed push is not retried by itself (it needs a person), so nothing more is sent.
    expect((await syncStripe(officeId)).pendingRetries).toEqual([]);
  });
});

describe("the hourly sweep", () => {
  it("re-arms the outbox of an office whose object lost its alarm while Stripe work is unsettled", async () => {
    const token = `sweep${letters()}`;
    await faultRule(token, ["500"]);
    const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 7_700 }, legalName: `Clinic ${token}` });
    await syncStripe(officeId);
    await runInDurableObject(stub(officeId), async (_o, state) => {
      await state.storage.deleteAlarm();
      state.storage.sql.exec("DELETE FROM stripe_retry");
    });
    expect(await runInDurableObject(stub(officeId), (_o, state) => state.storage.getAlarm())).toBeNull();
    await clearFaultRule(token);
    // The sweep leaves fresh work to the alarm; this invoice's has sat still for an hour.
    const setupId = (await invoiceRows(officeId)).find((i) => i.kind === "setup")!.id;
    await testDb().update(invoices).set({ updatedAt: Date.now() - 3_600_000 }).where(eq(invoices.id, setupId));
    const swept = await sweepStripeWork(testDb(), env);
    expect(swept.failed).toBe(0);
    expect(swept.offices).toBeGreaterThanOrEqual(1);
    // Armed again (or already run by it): the invoice reaches Stripe without anyone asking.
    await runDurableObjectAlarm(stub(officeId));
    await syncStripe(officeId);
    expect((await invoiceRows(officeId)).find((i) => i.kind === "setup")!.stripeState).toBe("finalized");
  });
});

describe("POST /v1/offices/{officeId}/invoices/{invoiceId}/refunds", () => {
  const refund = async (officeId: string, invoiceId: string, body: Record<string, unknown>) =>
    SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}/refunds`, { method: "POST", headers: await admin(), body: JSON.stringify(body) });

  it("refunds part, then the rest, of an invoice Stripe collected; never more than was paid", async () => {
    // A card on file (the real setup flow): Stripe charges the setup fee after finalize.
    const { officeId, setup } = await pushedOffice({ attempted: true });
    const partial = await refund(officeId, setup.id, { amount: 10_000, reason: "billing_error" });
    expect(partial.status, await partial.clone().text()).toBe(201);
    expect(await partial.json()).toMatchObject({ amount: 10_000, status: "succeeded", remaining: 15_000, reason: "billing_error", invoiceId: setup.id });
    // Stripe said paid before its webhook arrived: the invoice follows.
    const paid = (await invoiceRows(officeId)).find((i) => i.id === setup.id)!;
    expect(paid).toMatchObject({ status: "paid", amountPaid: 25_000, amountRefunded: 10_000 });

    await expectProblem(await refund(officeId, setup.id, { amount: 15_001, reason: "billing_error" }), 409, "CONFLICT");
    const rest = await refund(officeId, setup.id, { reason: "requested_by_customer" });
    expect(rest.status).toBe(201);
    expect(await rest.json()).toMatchObject({ amount: 15_000, remaining: 0 });
    await expectProblem(await refund(officeId, setup.id, { reason: "billing_error" }), 409, "CONFLICT");

    const refunds = (await emulatorLog()).filter((r) => r.path === "/v1/refunds" && r.body.includes(setup.id));
    expect(refunds.map((r) => r.status)).toEqual([200, 200]);
    expect(refunds.every((r) => /^refund_rf_[0-9a-f]{32}$/.test(r.idempotencyKey ?? ""))).toBe(true);
    expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)!.amountRefunded).toBe(25_000);
  });

  it("keeps a refund pending when Stripe is down, and the outbox makes it once Stripe is back", async () => {
    const { officeId, setup } = await pushedOffice({ attempted: true });
    await faultRule(`metadata[invoice_ref]=${setup.id}`, ["500"]);
    await faultRule(encodeURIComponent(`metadata[invoice_ref]`) + `=${setup.id}`, ["500"]);
    const res = await refund(officeId, setup.id, { amount: 2_500, reason: "duplicate" });
    expect(res.status, await res.clone().text()).toBe(202);
    const pending = (await res.json()) as { id: string; status: string; remaining: number };
    expect(pending).toMatchObject({ status: "pending", remaining: 22_500 });
    expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)!.amountRefunded).toBe(0);
    await clearFaultRule(`metadata[invoice_ref]=${setup.id}`);
    await clearFaultRule(encodeURIComponent(`metadata[invoice_ref]`) + `=${setup.id}`);
    await runInDurableObject(stub(officeId), (_o, state) => void state.storage.sql.exec("UPDATE stripe_retry SET next_at = 0"));
    const report = await syncStripe(officeId);
    expect(report.refunded).toEqual([pending.id]);
    expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)!.amountRefunded).toBe(2_500);
    const made = (await emulatorLog()).filter((r) => r.path === "/v1/refunds" && r.idempotencyKey === `refund_${pending.id}` && r.status === 200 && !r.replayed);
    expect(made).toHaveLength(1);
  });

  it("refuses an invoice that never went to Stripe, and a missing invoice", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    const [draft] = await monthlyInvoices(officeId);
    await expectProblem(await refund(officeId, draft!.id, { reason: "billing_error" }), 409, "CONFLICT");
    await expectProblem(await refund(officeId, "inv_00000000000000000000000000000000", { reason: "billing_error" }), 404, "NOT_FOUND");
    await expectProblem(await refund(officeId, draft!.id, { reason: "because I said so" }), 400, "VALIDATION_FAILED");
    await expectProblem(await refund(officeId, draft!.id, { reason: "billing_error", amount: 0 }), 400, "VALIDATION_FAILED");
  });
});

describe("POST /v1/offices/{officeId}/invoices/{invoiceId}/void", () => {
  const voidIt = async (officeId: string, invoiceId: string) => SELF.fetch(`${api}/offices/${officeId}/invoices/${invoiceId}/void`, { method: "POST", headers: await admin() });

  it("voids an open, unpaid invoice here and on Stripe", async () => {
    // This customer's card declines: the invoice stays open on Stripe.
    const { officeId, setup } = await officeWithPushedSetupInvoice({ billingEmail: "billing+decline@harbor.example" });
    const res = await voidIt(officeId, setup.id);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ id: setup.id, status: "void" });
    await syncStripe(officeId);
    const row = (await invoiceRows(officeId)).find((i) => i.id === setup.id)!;
    expect(row).toMatchObject({ status: "void", stripeState: "voided" });
    const onStripe = await stripeObject<StripeInvoice>(`/v1/invoices/${await stripeIdOf(officeId, setup.id)}`);
    expect(onStripe.status).toBe("void");
    await expectProblem(await voidIt(officeId, setup.id), 409, "CONFLICT");
  });

  it("voids an invoice before its push: nothing is ever sent for it", async () => {
    const token = `holdoff${letters()}`;
    await faultRule(token, ["500"]);
    const officeId = await onboardOffice({ startsOn: "2026-11-02", plan: { setupFee: 5_000 }, legalName: `Clinic ${token}` });
    const setup = (await invoiceRows(officeId)).find((i) => i.kind === "setup")!;
    expect((await voidIt(officeId, setup.id)).status).toBe(200);
    await clearFaultRule(token);
    await runInDurableObject(stub(officeId), (_o, state) => void state.storage.sql.exec("UPDATE stripe_retry SET next_at = 0"));
    await syncStripe(officeId);
    expect((await stripeLog(officeId)).filter((r) => r.status === "succeeded")).toEqual([]);
    expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)!.stripeState).toBe("none");
    const [draft] = await monthlyInvoices(officeId);
    await expectProblem(await voidIt(officeId, draft!.id), 409, "CONFLICT");
  });
});

describe("POST /v1/offices/{officeId}/billing-portal", () => {
  it("answers a Stripe-hosted portal URL for the office admin, creating the customer once", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    const headers = bearer(await mintToken("office_admin", [officeId]));
    const res = await SELF.fetch(`${api}/offices/${officeId}/billing-portal`, { method: "POST", headers });
    expect(res.status, await res.clone().text()).toBe(201);
    const { url } = (await res.json()) as { url: string };
    expect(url.startsWith(new URL("/portal/", env.STRIPE_API_BASE!).href)).toBe(true);
    expect((await SELF.fetch(`${api}/offices/${officeId}/billing-portal`, { method: "POST", headers })).status).toBe(201);
    const ops = (await stripeLog(officeId)).map((r) => [r.operation, r.status]);
    expect(ops).toEqual([
      ["customer", "succeeded"],
      ["portal", "succeeded"],
      ["portal", "succeeded"],
    ]);
    const portal = (await emulatorLog()).filter((r) => r.path === "/v1/billing_portal/sessions" && r.idempotencyKey?.includes(officeId));
    expect(portal).toHaveLength(2);
    expect(new URLSearchParams(portal[0]!.body).get("return_url")).toBe(env.BILLING_PORTAL_RETURN_URL);
    const audit = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "billing_portal.session_created")));
    expect(audit).toHaveLength(2);
    expect(JSON.stringify(audit)).not.toContain(url);
  });

  it("is 503 BILLING_PORTAL_NOT_CONFIGURED, naming the fix, when Stripe has no default portal configuration", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    // Scoped to this office's session requests: the emulator answers as an account whose customer portal settings were never saved.
    await faultRule(`portal_${officeId}`, ["portal_unconfigured"]);
    const errors = vi.spyOn(console, "error");
    try {
      const res = await SELF.fetch(`${api}/offices/${officeId}/billing-portal`, { method: "POST", headers: bearer(await mintToken("office_admin", [officeId])) });
      const body = await expectProblem(res, 503, "BILLING_PORTAL_NOT_CONFIGURED");
      expect(body.detail).toContain("npm run stripe:setup");
    } finally {
      await clearFaultRule(`portal_${officeId}`);
    }
    const portal = (await stripeLog(officeId)).filter((r) => r.operation === "portal");
    expect(portal.map((r) => [r.status, r.httpStatus, r.errorCode])).toEqual([["failed", 400, "billing_portal_not_configured"]]); // refused once, not retried
    expect(errors.mock.calls.some(([line]) => String(line).includes("no default billing-portal configuration"))).toBe(true);
    errors.mockRestore();
    const audit = await testDb().select().from(auditLog).where(and(eq(auditLog.officeId, officeId), eq(auditLog.action, "billing_portal.session_created")));
    expect(audit).toHaveLength(0);
    // Once configured (here: the fault cleared), the same request opens a session.
    expect((await SELF.fetch(`${api}/offices/${officeId}/billing-portal`, { method: "POST", headers: bearer(await mintToken("office_admin", [officeId])) })).status).toBe(201);
  });

  it("is 503 in problem+json when Stripe cannot open a session", async () => {
    const officeId = await onboardOffice({ startsOn: "2026-11-02" });
    await faultRule(`portal_${officeId}`, ["500"]);
    try {
      const res = await SELF.fetch(`${api}/offices/${officeId}/billing-portal`, { method: "POST", headers: bearer(await mintToken("office_admin", [officeId])) });
      await expectProblem(res, 503, "SERVICE_UNAVAILABLE");
    } finally {
      await clearFaultRule(`portal_${officeId}`);
    }
  });
});
