// The demo `npm run dev` seeds on first start: two plans, three offices in three time zones,
// patients active across two cycles, the first cycle invoiced through the local Stripe emulator,
// which collects one office's invoice (with a 10 % discount line) and declines another's (that
// office goes past_due); the third has no card on file and is on net 30, so its invoices are sent
// by e-mail, and its first one gets a credit note.
//
// Its dates come from demoPlan(now) (tools/lib/demo-plan.mjs), checked before anything is sent.
// Every step is idempotent under the demo's id (plan codes, Idempotency-Keys of the offices and of
// every patient event, an invoicing run as of the plan's `now` over the demo's offices), so a seed
// that failed or was interrupted is completed by running it again with the same id and `now`, and
// never duplicates what the first attempt made.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiClient, ApiProblem } from "./api.mjs";
import { DEMO_TERMS, demoPlan, demoPlanProblems } from "./demo-plan.mjs";

const PLANS = {
  essentials: {
    name: "Essentials",
    version: {
      currency: "usd",
      baseFee: 4900,
      setupFee: 25000,
      includedPatients: 0,
      graceDays: 14,
      tiers: [
        { upTo: 50, unitAmount: 800 },
        { upTo: 200, unitAmount: 600 },
        { upTo: null, unitAmount: 400 },
      ],
    },
  },
  growth: { name: "Growth", version: { currency: "usd", baseFee: 9900, setupFee: 0, includedPatients: 10, graceDays: 14, tiers: [{ upTo: null, unitAmount: 650 }] } },
};

/** A new demo id: short, lowercase, safe in plan codes and idempotency keys. */
export function newDemoId() {
  return Math.random().toString(36).slice(2, 8).padEnd(6, "0");
}

/** Creates a plan with this code, or finds the one an earlier attempt created. */
async function ensurePlan(api, code, spec) {
  try {
    return await api.post("/v1/plans", { code, ...spec });
  } catch (err) {
    if (!(err instanceof ApiProblem && err.status === 409)) throw err;
    const { data } = await api.get("/v1/plans");
    const plan = data.find((p) => p.code === code);
    if (!plan) throw err;
    return plan;
  }
}

/**
 * Seeds the demo through the API (so every rule and audit entry applies) and returns what it made.
 * @param {{ base: string, adminToken: string, clinicalToken: (officeId: string) => string, now: number, demoId: string, log?: (line: string) => void, settleMs?: number }} opts
 */
export async function seedDemo({ base, adminToken, clinicalToken, now, demoId, log = () => {}, settleMs = 20_000 }) {
  const plan = demoPlan(now);
  const problems = demoPlanProblems(plan);
  if (problems.length > 0) throw new Error(`the demo's plan of dates is unsound as of ${new Date(now).toISOString()}: ${problems.join("; ")}`);
  const api = apiClient(base, adminToken);
  /**
   * An office's events in one request, the patient ids in the body (docs/payment-plan.md §5.10);
   * each event keyed, so a repeated demo replays them. Anything but applied or replayed stops it.
   */
  const reportEvents = async (clinical, officeId, officeKey, events) => {
    if (events.length === 0) return;
    const answer = await clinical.post(`/v1/offices/${officeId}/patient-events`, {
      events: events.map((e) => ({ patientId: `demo-${officeKey}-${e.patient}`, kind: e.kind, occurredAt: new Date(e.at).toISOString(), idempotencyKey: `demo-${demoId}-${officeKey}-${e.kind}-${e.patient}` })),
    });
    const refused = answer.results.filter((r) => r.status !== "applied" && r.status !== "replayed");
    if (refused.length > 0) throw new Error(`the demo's events for ${officeKey} were refused: ${refused.map((r) => `#${r.index} ${r.status} ${r.code}`).join(", ")}`);
  };

  const plans = {};
  for (const [key, spec] of Object.entries(PLANS)) plans[key] = (await ensurePlan(api, `${key}-${demoId}`, spec)).id;
  log(`plans: Essentials ${plans.essentials}, Growth ${plans.growth}`);

  const offices = {};
  for (const o of plan.offices) {
    const office = await api.post(
      "/v1/offices",
      { legalName: o.legalName, billingEmail: o.billingEmail, timeZone: o.timeZone, billingAnchorDay: o.anchor, planId: plans[o.plan], startsOn: o.startsOn },
      { "idempotency-key": `demo-${demoId}-${o.key}` },
    );
    offices[o.key] = { id: office.id, legalName: o.legalName, timeZone: o.timeZone };
    await reportEvents(apiClient(base, clinicalToken(office.id)), office.id, o.key, o.firstCycleEvents);
    log(`office ${o.legalName} (${o.timeZone}): ${office.id}, ${o.patients} patients from ${o.startsOn}`);
  }

  // Cards on file through the hosted setup page (docs/payment-plan.md §10): Lakeside's pays, Spree's
  // declines (Stripe's test card pm_card_chargeCustomerFail); Harbor has none, so its invoices are
  // sent by e-mail with a due date. The demo completes the page as the office would, through the
  // local emulator's control endpoint; the emulator's webhooks bring the completion back.
  for (const [key, card] of [["lakeside", "pm_card_visa"], ["spree", "pm_card_chargeCustomerFail"]]) {
    const id = offices[key].id;
    if ((await api.get(`/v1/offices/${id}`)).paymentMethod?.status === "on_file") continue;
    const { url } = await api.post(`/v1/offices/${id}/payment-method/setup-session`, {});
    const session = new URL(url);
    const done = await fetch(`${session.origin}/_emulator/checkout/sessions/${session.pathname.split("/").pop()}/complete`, { method: "POST", body: JSON.stringify({ payment_method: card }) });
    if (!done.ok) throw new Error(`the emulator did not complete ${offices[key].legalName}'s setup page: ${done.status}`);
    const until = Date.now() + settleMs;
    while ((await api.get(`/v1/offices/${id}`)).paymentMethod?.status !== "on_file" && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
    log(`office ${offices[key].legalName}: a card on file (${card})`);
  }

  // Net terms for one office (its invoices are sent by e-mail, due in 30 days), a discount for
  // another (its first invoice has the line), both before the close.
  const terms = offices[DEMO_TERMS.netTerms.office];
  if ((await api.get(`/v1/offices/${terms.id}`)).collection?.method !== "send_invoice") {
    await api.patch(`/v1/offices/${terms.id}`, { collection: { method: "send_invoice", daysUntilDue: DEMO_TERMS.netTerms.daysUntilDue } });
  }
  log(`office ${terms.legalName}: net ${DEMO_TERMS.netTerms.daysUntilDue}`);
  const couponCode = `DEMO-${demoId.toUpperCase()}`;
  await api.post("/v1/coupons", { code: couponCode, percentOff: DEMO_TERMS.discount.percentOff, duration: DEMO_TERMS.discount.duration }).catch((err) => {
    if (!(err instanceof ApiProblem && err.status === 409)) throw err; // made by an earlier attempt
  });
  const discounted = offices[DEMO_TERMS.discount.office];
  await api.post(`/v1/offices/${discounted.id}/discount`, { couponCode }).catch((err) => {
    if (!(err instanceof ApiProblem && err.status === 409)) throw err; // applied by an earlier attempt
  });
  log(`office ${discounted.legalName}: coupon ${couponCode} (${DEMO_TERMS.discount.percentOff} % off, ${DEMO_TERMS.discount.duration})`);

  // The first cycles have ended by `now`: invoice them (Stripe then collects, or fails to). As of
  // the plan's `now` and over the demo's offices only, so a repeated run closes nothing more.
  const officeIds = Object.values(offices).map((o) => o.id);
  const run = await api.post("/v1/admin/invoicing-runs", { at: new Date(now).toISOString(), officeIds });
  log(`invoicing run: ${run.offices.reduce((n, o) => n + o.invoices.length, 0)} cycle(s) closed`);

  // Current-cycle activity, after the close.
  for (const o of plan.offices) {
    const id = offices[o.key].id;
    await reportEvents(apiClient(base, clinicalToken(id)), id, o.key, o.currentCycleEvents);
  }

  // A credit note on the net-terms office's first invoice, once Stripe has it (its outbox pushes it
  // right after the close); skipped when an earlier attempt issued it.
  const credited = offices[DEMO_TERMS.creditNote.office];
  const creditUntil = Date.now() + settleMs;
  let monthly = null;
  let creditNoteId = null;
  while (Date.now() < creditUntil) {
    const page = await api.get(`/v1/offices/${credited.id}/invoices?kind=monthly`).catch(() => ({ data: [] }));
    monthly = page.data.find((i) => i.status !== "draft") ?? null;
    if (monthly?.stripeState === "finalized") break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (monthly?.stripeState === "finalized") {
    const read = await api.get(`/v1/offices/${credited.id}/invoices/${monthly.id}`);
    creditNoteId = read.creditNotes?.[0]?.id ?? null;
    if (!creditNoteId) {
      const { amount, reason, memo } = DEMO_TERMS.creditNote;
      const made = await api.post(`/v1/offices/${credited.id}/invoices/${monthly.id}/credit-notes`, { amount, reason, memo });
      creditNoteId = made.id;
      log(`office ${credited.legalName}: credit note ${made.id} of ${made.amount} on ${monthly.id} (${made.status})`);
    }
  } else {
    log(`office ${credited.legalName}: its invoice is not on Stripe yet; no credit note (\`POST …/invoices/{id}/credit-notes\` makes one)`);
  }

  // Let Stripe's events come back (the emulator posts them to the Worker).
  const deadline = Date.now() + settleMs;
  let statuses = {};
  for (;;) {
    statuses = {};
    for (const [key, o] of Object.entries(offices)) {
      const page = await api.get(`/v1/offices/${o.id}/invoices?kind=monthly&status=paid`).catch(() => ({ data: [] }));
      const office = await api.get(`/v1/offices/${o.id}`);
      statuses[key] = { office: office.status, paidMonthly: page.data.length };
    }
    if ((statuses.lakeside.paidMonthly > 0 && statuses.spree.office === "past_due") || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (!(statuses.lakeside.paidMonthly > 0 && statuses.spree.office === "past_due")) {
    log(`Stripe's answers have not all come back yet (${JSON.stringify(statuses)}); they are applied when they arrive`);
  }
  const highlights = {
    netTerms: { officeId: terms.id, daysUntilDue: DEMO_TERMS.netTerms.daysUntilDue },
    discount: { officeId: discounted.id, couponCode },
    creditNote: creditNoteId ? { officeId: credited.id, invoiceId: monthly.id, creditNoteId } : null,
  };
  return { demoId, plans, offices, statuses, highlights, seededAt: new Date(now).toISOString() };
}

/**
 * The demo of a data folder: `demo.json` once seeded. A seed in progress is remembered in
 * `demo.pending.json` (its id and `now`) before its first request, so a seed that failed or was
 * interrupted is resumed with the same id and dates on the next call, never started twice.
 * Returns the demo, or null when seeding is off and there is none; throws what the seed threw.
 * @param {{ dataDir: string, now: () => number, seed: boolean, log?: (line: string) => void } & Omit<Parameters<typeof seedDemo>[0], "now" | "demoId" | "log">} opts
 */
export async function ensureDemo({ dataDir, now, seed, log = () => {}, ...seedOpts }) {
  const donePath = join(dataDir, "demo.json");
  const pendingPath = join(dataDir, "demo.pending.json");
  if (existsSync(donePath)) return JSON.parse(readFileSync(donePath, "utf8"));
  if (!seed) return null;
  let pending = existsSync(pendingPath) ? JSON.parse(readFileSync(pendingPath, "utf8")) : null;
  if (pending) {
    log(`resuming the demo seed begun as of ${new Date(pending.now).toISOString()} (its steps are idempotent; \`npm run dev -- --fresh\` starts over)`);
  } else {
    pending = { demoId: newDemoId(), now: now() };
    writeAtomically(pendingPath, pending);
    log("seeding the demo (first start; `npm run dev -- --fresh` starts over)");
  }
  const demo = await seedDemo({ ...seedOpts, now: pending.now, demoId: pending.demoId, log });
  writeAtomically(donePath, demo);
  rmSync(pendingPath, { force: true });
  return demo;
}

function writeAtomically(path, value) {
  writeFileSync(`${path}.tmp`, JSON.stringify(value, null, 2));
  renameSync(`${path}.tmp`, path);
}
