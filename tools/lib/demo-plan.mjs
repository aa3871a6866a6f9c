// The demo's plan of dates: a pure function of "now" (no I/O, no clock of its own), so a test can
// run it for every day and hour of the calendar. Each office starts at the beginning of the cycle
// before the one that holds `now` in its own time zone, so that
//   - its first cycle has ended by `now` in its zone (the invoicing run closes it),
//   - its second cycle (the current one) has begun, and holds the events reported after the close,
//   - every event lies inside the cycle it is meant for, and none lies after `now`.
// The calendar rules mirror src/billing/calendar.ts (docs/payment-plan.md "Cycles"); the plan's
// test checks them against that module.

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The three demo offices: time zones on three continents, two anchor days, one declining card. */
export const DEMO_OFFICES = [
  { key: "lakeside", legalName: "Lakeside Family Practice LLC", billingEmail: "billing@lakeside.example", timeZone: "America/New_York", anchor: 1, plan: "essentials", patients: 42 },
  { key: "harbor", legalName: "Harbor Pediatrics PC", billingEmail: "billing@harbor.example", timeZone: "America/Los_Angeles", anchor: 15, plan: "growth", patients: 18 },
  // This office's card declines (the emulator's +decline@ rule): its first invoice fails.
  { key: "spree", legalName: "Praxis an der Spree GmbH", billingEmail: "billing+decline@spree.example", timeZone: "Europe/Berlin", anchor: 1, plan: "essentials", patients: 7 },
];

/**
 * Commercial terms the demo shows (none depends on the date): one office on net terms
 * (docs/payment-plan.md §10.4), one with a discount (§6.10, applied before the close so its first
 * invoice has the line) and one credit note (§8.10) on the net-terms office's first monthly invoice,
 * once Stripe has it. The credit note is far below that invoice's smallest total (Growth's base fee
 * alone is 9,900), so it fits whatever the patients.
 */
export const DEMO_TERMS = {
  netTerms: { office: "harbor", daysUntilDue: 30 },
  discount: { office: "lakeside", percentOff: 10, duration: "forever" },
  creditNote: { office: "harbor", amount: 1500, reason: "order_change", memo: "service_credit" },
};

/** New patients each office reports in its current cycle, after the close. */
export const NEW_PATIENTS = 3;

/** Local calendar date (YYYY-MM-DD) of an instant in an IANA time zone. */
export function localDateOf(instant, timeZone) {
  let format = formats.get(timeZone);
  if (!format) formats.set(timeZone, (format = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })));
  const parts = format.formatToParts(instant);
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")}`;
}
/** @type {Map<string, Intl.DateTimeFormat>} */
const formats = new Map();

/** The first instant whose local date in `timeZone` is `date` (local midnight, or later when DST skips it). */
export function localDayStart(date, timeZone) {
  const [y, m, d] = date.split("-").map(Number);
  // Local midnight lies within 14 hours of UTC midnight: find the first hour, then the first minute.
  let t = Date.UTC(y, m - 1, d) - 15 * HOUR;
  while (localDateOf(t, timeZone) < date) t += HOUR;
  while (localDateOf(t - 15 * 60_000, timeZone) === date) t -= 15 * 60_000;
  while (localDateOf(t - 60_000, timeZone) === date) t -= 60_000;
  return t;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");
/** The day a cycle starts in month `m` (1–12) of year `y`: the anchor day, or the month's last day. */
function anchorIn(y, m, anchor) {
  const index = y * 12 + (m - 1);
  const [yy, mm] = [Math.floor(index / 12), (index % 12) + 1];
  const last = new Date(Date.UTC(yy, mm, 0)).getUTCDate();
  return `${pad(yy, 4)}-${pad(mm)}-${pad(Math.min(anchor, last))}`;
}

/** The cycle [start, end) that holds a local date. */
export function cycleOf(date, anchor) {
  const [y, m] = date.split("-").map(Number);
  const here = anchorIn(y, m, anchor);
  return date >= here ? { start: here, end: anchorIn(y, m + 1, anchor) } : { start: anchorIn(y, m - 1, anchor), end: here };
}

/** The day before a local date. */
const dayBefore = (date) => new Date(Date.parse(`${date}T00:00:00Z`) - DAY).toISOString().slice(0, 10);

/**
 * What the demo seeds as of `now`: per office its first day, its two cycles (as local dates and
 * instants) and its patient events (patient suffix, kind, instant), in the order they are sent.
 * @param {number} now
 */
export function demoPlan(now) {
  const offices = DEMO_OFFICES.map((spec) => {
    const current = cycleOf(localDateOf(now, spec.timeZone), spec.anchor);
    const first = cycleOf(dayBefore(current.start), spec.anchor);
    const firstStart = localDayStart(first.start, spec.timeZone);
    const currentStart = localDayStart(current.start, spec.timeZone);
    // First cycle: patient i activates on day i mod 20, at noon local-ish (12 h after the cycle
    // began); every sixth patient leaves on day 25. A cycle lasts at least 28 days.
    const firstCycleEvents = [];
    for (let i = 1; i <= spec.patients; i++) firstCycleEvents.push({ patient: `${i}`, kind: "activate", at: firstStart + 12 * HOUR + (i % 20) * DAY });
    for (let i = 1; i <= Math.floor(spec.patients / 6); i++) firstCycleEvents.push({ patient: `${i}`, kind: "deactivate", at: firstStart + 12 * HOUR + 25 * DAY });
    // Current cycle: new patients spread over the time it has run so far (all at its start when
    // it began this very instant).
    const elapsed = now - currentStart;
    const currentCycleEvents = [];
    for (let i = 1; i <= NEW_PATIENTS; i++) currentCycleEvents.push({ patient: `new-${i}`, kind: "activate", at: currentStart + Math.floor((elapsed * i) / (NEW_PATIENTS + 1)) });
    return {
      ...spec,
      startsOn: first.start,
      cycles: [
        { ...first, startAt: firstStart, endAt: currentStart },
        { ...current, startAt: currentStart, endAt: localDayStart(current.end, spec.timeZone) },
      ],
      firstCycleEvents,
      currentCycleEvents,
    };
  });
  return { now, offices };
}

/**
 * The plan's promises, checked before anything is sent: a list of what is wrong (empty when the
 * plan is sound). Every event lies in its cycle and not after `now`; the first cycle has ended by
 * `now` and the second holds it; activations precede deactivations.
 * @param {ReturnType<typeof demoPlan>} plan
 */
export function demoPlanProblems(plan) {
  const problems = [];
  for (const o of plan.offices) {
    const [first, current] = o.cycles;
    if (!(first.endAt <= plan.now)) problems.push(`${o.key}: the first cycle (${first.start} → ${first.end}) has not ended by now`);
    if (!(current.startAt <= plan.now && plan.now < current.endAt)) problems.push(`${o.key}: now is not in the current cycle (${current.start} → ${current.end})`);
    if (first.end !== current.start) problems.push(`${o.key}: the cycles are not consecutive`);
    const check = (events, cycle) => {
      for (const e of events) {
        if (e.at > plan.now) problems.push(`${o.key}: ${e.kind} of ${e.patient} lies in the future`);
        if (e.at < cycle.startAt || e.at >= cycle.endAt) problems.push(`${o.key}: ${e.kind} of ${e.patient} lies outside ${cycle.start} → ${cycle.end}`);
      }
    };
    check(o.firstCycleEvents, first);
    check(o.currentCycleEvents, current);
    const activated = new Map(o.firstCycleEvents.filter((e) => e.kind === "activate").map((e) => [e.patient, e.at]));
    for (const e of o.firstCycleEvents.filter((x) => x.kind === "deactivate")) {
      if (!(activated.get(e.patient) < e.at)) problems.push(`${o.key}: ${e.patient} leaves before joining`);
    }
  }
  return problems;
}
