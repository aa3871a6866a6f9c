// The demo `npm run dev` seeds on first start: two plans, three offices in three time zones,
// patients active across two cycles, the first cycle invoiced through the local Stripe emulator,
// which collects one office's invoice and declines another's (that office goes past_due).
import { apiClient } from "./api.mjs";

const DAY = 86_400_000;
const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);

/** The first day of the month before `now`'s (UTC), and that month's 15th. */
function previousMonth(now) {
  const d = new Date(now);
  const first = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1);
  return { first, fifteenth: first + 14 * DAY };
}

/**
 * Seeds the demo through the API (so every rule and audit entry applies) and returns what it made.
 * @param {{ base: string, adminToken: string, clinicalToken: (officeId: string) => string, log?: (line: string) => void, now?: number }} opts
 */
export async function seedDemo({ base, adminToken, clinicalToken, log = () => {}, now = Date.now() }) {
  const api = apiClient(base, adminToken);
  const { first, fifteenth } = previousMonth(now);
  const suffix = Math.random().toString(36).slice(2, 7);
  const tiers = [
    { upTo: 50, unitAmount: 800 },
    { upTo: 200, unitAmount: 600 },
    { upTo: null, unitAmount: 400 },
  ];
  const essentials = await api.post("/v1/plans", {
    code: `essentials-${suffix}`,
    name: "Essentials",
    version: { currency: "usd", baseFee: 4900, setupFee: 25000, includedPatients: 0, graceDays: 14, tiers },
  });
  const growth = await api.post("/v1/plans", {
    code: `growth-${suffix}`,
    name: "Growth",
    version: { currency: "usd", baseFee: 9900, setupFee: 0, includedPatients: 10, graceDays: 14, tiers: [{ upTo: null, unitAmount: 650 }] },
  });
  log(`plans: Essentials ${essentials.id}, Growth ${growth.id}`);

  const specs = [
    { key: "lakeside", legalName: "Lakeside Family Practice LLC", billingEmail: "billing@lakeside.example", timeZone: "America/New_York", anchor: 1, plan: essentials.id, startsOn: isoDate(first), patients: 42 },
    { key: "harbor", legalName: "Harbor Pediatrics PC", billingEmail: "billing@harbor.example", timeZone: "America/Los_Angeles", anchor: 15, plan: growth.id, startsOn: isoDate(fifteenth), patients: 18 },
    // This office's card declines (the emulator's +decline@ rule): its invoice fails.
    { key: "spree", legalName: "Praxis an der Spree GmbH", billingEmail: "billing+decline@spree.example", timeZone: "Europe/Berlin", anchor: 1, plan: essentials.id, startsOn: isoDate(first), patients: 7 },
  ];
  const offices = {};
  for (const s of specs) {
    const office = await api.post("/v1/offices", { legalName: s.legalName, billingEmail: s.billingEmail, timeZone: s.timeZone, billingAnchorDay: s.anchor, planId: s.plan, startsOn: s.startsOn });
    offices[s.key] = { id: office.id, legalName: s.legalName, timeZone: s.timeZone };
    // Activations in the first cycle, a few deactivations, then more activations in the second.
    const clinical = apiClient(base, clinicalToken(office.id));
    const firstDay = Date.parse(`${s.startsOn}T12:00:00Z`);
    for (let i = 1; i <= s.patients; i++) {
      await clinical.post(`/v1/offices/${office.id}/patients/demo-${s.key}-${i}/activate`, { occurredAt: new Date(firstDay + (i % 20) * DAY).toISOString() }, { "idempotency-key": `demo-${office.id}-a${i}` });
    }
    for (let i = 1; i <= Math.floor(s.patients / 6); i++) {
      await clinical.post(`/v1/offices/${office.id}/patients/demo-${s.key}-${i}/deactivate`, { occurredAt: new Date(firstDay + 25 * DAY).toISOString() }, { "idempotency-key": `demo-${office.id}-d${i}` });
    }
    log(`office ${s.legalName} (${s.timeZone}): ${office.id}, ${s.patients} patients`);
  }
  // The first cycles have ended: invoice them (Stripe then collects, or fails to).
  const run = await api.post("/v1/admin/invoicing-runs", {});
  const closed = run.offices.reduce((n, o) => n + o.invoices.length, 0);
  log(`invoicing run: ${closed} cycle(s) closed`);
  // Second-cycle activity, after the close.
  for (const s of specs) {
    const clinical = apiClient(base, clinicalToken(offices[s.key].id));
    for (let i = 1; i <= 3; i++) {
      await clinical.post(`/v1/offices/${offices[s.key].id}/patients/demo-${s.key}-new-${i}/activate`, { occurredAt: new Date(now - i * 3_600_000).toISOString() }, { "idempotency-key": `demo-${offices[s.key].id}-n${i}` });
    }
  }
  // Let Stripe's events come back (the emulator posts them to the Worker).
  const deadline = Date.now() + 20_000;
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
  return { plans: { essentials: essentials.id, growth: growth.id }, offices, statuses, seededAt: new Date(now).toISOString() };
}
