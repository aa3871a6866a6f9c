import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { advancePatientKey, patientKey } from "../../../src/security/crypto";
import { bearer, mintToken } from "../../harness/auth";
import { monthlyInvoices, onboardOffice, reportEvent, runInvoicing } from "../../harness/billing";
import { emulatorLog, invoiceRows, letters, stripeLog, syncStripe, untilStripeAttempted } from "../../harness/stripe";
import { deliver, emulatorEvents } from "../../harness/webhooks";
import { addPaymentMethod } from "../../harness/payment-methods";

const api = "https://billing.test/v1";

/**
 * The proof of the PHI boundary: patients whose ids are unique canary strings go through every
 * flow that reaches Stripe — onboarding with a setup fee, activations and deactivations, the
 * monthly close, one-off charges with internal notes, a refund, the billing portal, Stripe's
 * webhooks back to us (one of which makes the office re-read an invoice from Stripe) — and
 * then every byte the local Stripe emulator received (paths, queries, headers, bodies, from every
 * test file of the run) is searched for the canaries and their patient keys: zero hits.
 */
describe("canary: no patient identifier ever reaches Stripe", () => {
  it("runs every Stripe flow with canary patients and finds none of them in what Stripe received", async () => {
    const run = letters(8);
    const canaries = Array.from({ length: 12 }, (_, i) => `CANARY-${run}-${i}`);
    // Identifier-shaped canaries too: a medical record number and an e-mail-like id.
    canaries.push(`MRN-${run}-0042`, `canary.${run}@patients.example`);
    const note = `CANARY-NOTE-${run}: patient ${canaries[0]} asked about DOB 1980-04-02`;

    const officeId = await onboardOffice({ startsOn: "2026-09-01", legalName: "Canary Valley Clinic LLC", billingEmail: "billing@canary-valley.example" });
    // A card on file through the hosted setup page (the flow crosses to Stripe too), then the setup fee charged at once.
    await addPaymentMethod(officeId);
    for (const [i, id] of canaries.entries()) await reportEvent(officeId, id, "activate", `2026-09-${String(2 + i).padStart(2, "0")}T10:00:00Z`);
    await reportEvent(officeId, canaries[1]!, "deactivate", "2026-09-20T10:00:00Z");

    const admin = { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" };
    const setupCharge = await SELF.fetch(`${api}/offices/${officeId}/charges`, { method: "POST", headers: admin, body: JSON.stringify({ amount: 30_000, category: "setup", note, mode: "invoice_now" }) });
    expect(setupCharge.status, await setupCharge.clone().text()).toBe(201);
    const setupId = ((await setupCharge.json()) as { invoiceId: string }).invoiceId;
    for (const mode of ["invoice_now", "add_to_current"]) {
      const res = await SELF.fetch(`${api}/offices/${officeId}/charges`, { method: "POST", headers: admin, body: JSON.stringify({ amount: 12_500, category: "training", note, mode }) });
      expect(res.status, await res.clone().text()).toBe(201);
    }
    await runInvoicing([officeId], "2026-10-01T12:00:00Z");
    const report = await syncStripe(officeId);
    expect(report.failed).toEqual([]);

    const all = await invoiceRows(officeId);
    const sent = all.filter((i) => i.stripeState === "finalized");
    // setup fee, the invoice_now charge, and September; all charged automatically (a card on file).
    expect(sent.map((i) => i.kind).sort()).toEqual(["monthly", "one_off", "one_off"]);
    expect(sent.every((i) => i.collectionMethod === "charge_automatically")).toBe(true);
    const [september] = await monthlyInvoices(officeId);
    expect(september!.total).toBe(14 * 800 + 4900 + 12_500);

    for (const i of sent) await untilStripeAttempted(i.id); // the emulator collects 10–50 ms after finalize (later under load)
    const setup = sent.find((i) => i.id === setupId)!;
    const refund = await SELF.fetch(`${api}/offices/${officeId}/invoices/${setup.id}/refunds`, { method: "POST", headers: admin, body: JSON.stringify({ amount: 5_000, reason: "billing_error" }) });
    expect(refund.status, await refund.clone().text()).toBe(201);
    const portal = await SELF.fetch(`${api}/offices/${officeId}/billing-portal`, { method: "POST", headers: bearer(await mintToken("office_admin", [officeId])) });
    expect(portal.status).toBe(201);

    // Stripe's events about the office come back through the webhook route and are applied
    // (a conflicting one makes the office read the invoice from Stripe: outbound again, guarded).
    const events = await emulatorEvents(officeId);
    expect(events.length).toBeGreaterThan(3);
    for (const e of events) expect((await deliver(e)).status).toBe(200);
    const voidedAfterPaid = { ...events.find((e) => e.type === "invoice.paid")!, id: `evt_canary${run}`, type: "invoice.voided" };
    expect((await deliver(voidedAfterPaid)).status).toBe(200);
    expect((await syncStripe(officeId)).failed).toEqual([]);
    expect((await invoiceRows(officeId)).find((i) => i.id === setup.id)!.status).toBe("paid");

    // Every operation crossed: customer, three pushes of three calls, refund, portal, a status read.
    const ops = (await stripeLog(officeId)).filter((r) => r.status === "succeeded").map((r) => r.operation);
    expect(ops.filter((o) => o === "finalize")).toHaveLength(3);
    expect(ops).toEqual(expect.arrayContaining(["customer", "invoice", "addLines", "finalize", "refund", "portal", "readInvoice"]));

    const received = await emulatorLog();
    const mine = received.filter((r) => JSON.stringify(r).includes(officeId) || r.body.includes(setup.id));
    expect(mine.length).toBeGreaterThan(5);
    const raw = JSON.stringify(received);
    const decoded = received.map((r) => `${r.path}?${decodeURIComponent(r.rawQuery)}\n${JSON.stringify(r.headers)}\n${decodeURIComponent(r.body.replace(/\+/g, " "))}`).join("\n");
    // The pseudonyms under every version of the chain (the office was onboarded at the current one).
    const chain = String(env.PATIENT_KEY_CHAIN ?? "").split(",").filter(Boolean);
    const roots = await Promise.all(canaries.map((id) => patientKey(String(env.PATIENT_KEY_SECRET), officeId, id)));
    const keys = (await Promise.all(roots.map((k) => Promise.all(chain.map((_, i) => advancePatientKey(chain, k, 1, i + 2)))))).flat().concat(roots);
    const needles = [...canaries, ...keys, `CANARY-NOTE-${run}`, "1980-04-02", run];
    const hits = needles.filter((n) => raw.toLowerCase().includes(n.toLowerCase()) || decoded.toLowerCase().includes(n.toLowerCase()));
    expect(hits).toEqual([]);
  }, 240_000); // heavy: many requests; generous for a busy machine
});
