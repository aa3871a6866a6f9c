import { sql, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { currentDraftId, currentPatientsLineId, repricePatientsLine, retotalInvoice } from "../db/billing-sql";
import { dbErrorMatches } from "../db/errors";
import { offices } from "../db/offices";
import { patientEvents } from "../db/patients";
import { sha256Hex } from "../security/crypto";
import { newId } from "../security/request-id";
import type { AuditInput } from "./chain-writer";
import { earliestEventAt, EVENT_WINDOW_DAYS, type PatientEventAnswer, type PatientEventInput } from "./patient-events";

/** At most this many events per request (docs/payment-plan.md §5.10). */
export const MAX_BULK_EVENTS = 1000;
/** At most this many events per group commit (§5.11): one full request and the singles queued with it. */
export const MAX_GROUP_EVENTS = 2 * MAX_BULK_EVENTS;
/** How far in the future an event time may lie (clock drift between systems, §5.8). */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/** What an event of a request came to (§5.10), in the request's order; never with the patient id. */
export type EventOutcome =
  | { status: "applied" | "replayed"; event: PatientEventAnswer }
  | { status: "conflict"; code: "IDEMPOTENCY_KEY_REUSED" | "OFFICE_CANCELED"; reason: string }
  | { status: "invalid"; code: "OCCURRED_AT_OUT_OF_RANGE"; reason: string; field: "occurredAt"; message: string };

/** What the object knows of its office for deciding events; the batch checks it still holds. */
export type OfficeFacts = { status: string; billingStart: string };

/** Who sent a request, for its audit entry. */
type Actor = { actorSub: string; actorRole: string; requestId: string };

/** One request of a group: its events (pseudonymised, at the office's key version) and who sent it. */
export type Submission = { inputs: PatientEventInput[]; actor: Actor };

/** An event the batch records, with its order key (§5.2: event time, a deactivation outweighs a tie). */
type Rec = { eventId: string; input: PatientEventInput; key: number; upTo: number; applied?: boolean; active?: boolean };

type Slot = { outcome: EventOutcome } | { rec: Rec } | { sameAs: Rec };

/** A stored first answer for an idempotency key (this object's store, or the database). */
export type Known = { requestHash: string; answer: PatientEventAnswer };

const orderKey = (input: PatientEventInput) => input.occurredAt * 2 + (input.kind === "deactivate" ? 1 : 0);

/**
 * The ids of a group's events: `pev_`, 24 hex digits drawn once per group, then the event's place
 * in the group (8 hex digits): as unguessable across groups as one random id each, and in the
 * group's order, so the batch finds its own events as one range of the primary key (no list of
 * ids sent twice) and inserts them next to each other in its index instead of at 1,000 random
 * places (fewer pages written per commit).
 */
export function groupEventIds(): (index: number) => string {
  const prefix = newId("pev").slice(0, 4 + 24);
  return (index) => prefix + index.toString(16).padStart(8, "0");
}

const keyReused = (): EventOutcome => ({ status: "conflict", code: "IDEMPOTENCY_KEY_REUSED", reason: "This idempotency key was already used with a different event." });

/**
 * Decides every event of a group, in order (§5.10): a key seen before replays or conflicts; then
 * the event-time window (§5.8) and a canceled office's refusal of activations; the rest is
 * recorded. `office` is what the object believes; the batch checks it (and that no key it takes
 * as new is in the database) and, when that fails, the object decides again with what it read.
 */
export function planGroup(subs: Submission[], office: OfficeFacts, now: number, known: (input: PatientEventInput) => Known | null) {
  const earliest = earliestEventAt(office.billingStart);
  const canceled = office.status === "canceled";
  const inGroup = new Map<string, Rec>();
  const unknownKeys = new Set<string>();
  const recs: Rec[] = [];
  const nextId = groupEventIds();
  const slots: Slot[][] = subs.map((sub) =>
    sub.inputs.map((input): Slot => {
      const stored = known(input);
      if (stored) return { outcome: stored.requestHash === input.requestHash ? { status: "replayed", event: stored.answer } : keyReused() };
      const first = inGroup.get(input.idempotencyKeyHash);
      if (first) return first.input.requestHash === input.requestHash ? { sameAs: first } : { outcome: keyReused() };
      unknownKeys.add(input.idempotencyKeyHash);
      if (input.occurredAt > now + MAX_FUTURE_SKEW_MS) {
        return { outcome: { status: "invalid", code: "OCCURRED_AT_OUT_OF_RANGE", reason: "The event time lies in the future.", field: "occurredAt", message: "must not be in the future" } };
      }
      if (input.occurredAt < earliest) {
        const from = new Date(earliest).toISOString();
        return {
          outcome: {
            status: "invalid",
            code: "OCCURRED_AT_OUT_OF_RANGE",
            reason: `The event time lies before this office's window: events may be dated from ${from} (${EVENT_WINDOW_DAYS} days before its first day).`,
            field: "occurredAt",
            message: `must not be before ${from}`,
          },
        };
      }
      if (canceled && input.kind === "activate") {
        return { outcome: { status: "conflict", code: "OFFICE_CANCELED", reason: "The office's subscription is canceled; it takes no activations." } };
      }
      const rec: Rec = { eventId: nextId(recs.length), input, key: orderKey(input), upTo: 0 };
      inGroup.set(input.idempotencyKeyHash, rec);
      recs.push(rec);
      return { rec };
    }),
  );
  // The latest order key of each patient's events up to each event, within the group: with the
  // patient's state before the batch, the state after each event as if recorded one by one.
  const latest = new Map<string, number>();
  for (const rec of recs) {
    const upTo = Math.max(latest.get(rec.input.patientKey) ?? -1, rec.key);
    latest.set(rec.input.patientKey, upTo);
    rec.upTo = upTo;
  }
  // Keys of refused events the object did not know: the database may have recorded them (they
  // replay then). The keys of the events it records are checked by the events' unique index.
  const recorded = new Set(recs.map((r) => r.input.idempotencyKeyHash));
  const refusedKeys = [...unknownKeys].filter((k) => !recorded.has(k));
  return { subs, slots, recs, latest, unknownKeys: [...unknownKeys], refusedKeys, office };
}

export type GroupPlan = ReturnType<typeof planGroup>;

const isRefusal = (s: Slot) => "outcome" in s && (s.outcome.status === "invalid" || (s.outcome.status === "conflict" && s.outcome.code === "OFFICE_CANCELED"));

/**
 * One audit entry per request (§5.10): a one-event request as a single report (recorded, or its
 * refusal); a larger one with its events' ids, the counts per answer and a digest of the
 * pseudonyms. A request that recorded and refused nothing (all replays) writes none.
 */
export async function groupAudit(plan: GroupPlan): Promise<AuditInput[]> {
  const entries: AuditInput[] = [];
  for (const [i, sub] of plan.subs.entries()) {
    const slots = plan.slots[i]!;
    const recorded = slots.flatMap((s) => ("rec" in s ? [s.rec] : []));
    const refused = slots.filter(isRefusal);
    if (recorded.length === 0 && refused.length === 0) continue;
    const base = { ...sub.actor, officeId: null as string | null };
    if (sub.inputs.length === 1) {
      const input = sub.inputs[0]!;
      const action = `patient.${input.kind}`;
      const slot = slots[0]!;
      if ("rec" in slot) {
        entries.push({ ...base, action, outcome: "succeeded", targetIds: [slot.rec.eventId, input.patientKey], details: { occurredAt: new Date(input.occurredAt).toISOString() } });
      } else if ("outcome" in slot && "reason" in slot.outcome) {
        entries.push({ ...base, action, outcome: "failed", targetIds: [input.patientKey], details: { code: slot.outcome.status === "invalid" ? "VALIDATION_FAILED" : "CONFLICT", reason: slot.outcome.reason } });
      }
      continue;
    }
    const count = (status: EventOutcome["status"]) => slots.filter((s) => ("outcome" in s ? s.outcome.status === status : status === ("rec" in s ? "applied" : "replayed"))).length;
    entries.push({
      ...base,
      action: "patient.events",
      outcome: recorded.length > 0 ? "succeeded" : "failed",
      targetIds: recorded.map((r) => r.eventId),
      details: {
        events: sub.inputs.length,
        applied: count("applied"),
        replayed: count("replayed"),
        conflict: count("conflict"),
        invalid: count("invalid"),
        patientKeysSha256: await sha256Hex(sub.inputs.map((e) => e.patientKey).sort().join("\n")),
      },
    });
  }
  return entries;
}

const each = (json: SQL, ...fields: string[]) =>
  sql.raw(fields.map((f, i) => `json_extract(value, '$[${i}]') AS ${f}`).join(", ")).append(sql` FROM json_each(${json})`);

/** An event already recorded under one of the group's keys, as the batch reads it back. */
export type KnownRow = { id: string; officeId: string; patientKey: string; kind: "activate" | "deactivate"; eventAt: number; receivedAt: number; idempotencyKey: string; requestHash: string; applied: number; activeAfter: number };

/**
 * A first answer as this object's store keeps it (§5.11): what a replay cannot say itself — the
 * event's id, when it was recorded and what it came to (applied × 2 + active after). The rest is
 * the replaying event's own: the same request hash means the same kind, pseudonym and time. A
 * full answer took ~300 bytes a key, and storing a bulk group's answers was half of the object's
 * CPU in the bulk bench (docs/performance.md, "Bulk events").
 */
export type StoredEvent = [eventId: string, receivedAt: number, state: number];

export const storedEvent = (eventId: string, receivedAt: number, applied: boolean | number, active: boolean | number): StoredEvent => [eventId, receivedAt, (applied ? 2 : 0) + (active ? 1 : 0)];

/** The first answer of `input` from what the store kept: compact (`StoredEvent`), or whole as it was kept before. */
export function storedAnswer(stored: unknown, input: PatientEventInput, officeId: string): PatientEventAnswer {
  if (!Array.isArray(stored)) return stored as PatientEventAnswer;
  const [eventId, receivedAt, state] = stored as StoredEvent;
  return {
    eventId,
    officeId,
    patientKey: input.patientKey,
    kind: input.kind,
    occurredAt: new Date(input.occurredAt).toISOString(),
    receivedAt: new Date(receivedAt).toISOString(),
    applied: (state & 2) !== 0,
    active: (state & 1) !== 0,
  };
}

/** The first answer of an event read back by the batch (as `answerFrom` gives it for a row). */
export function knownAnswer(row: KnownRow): PatientEventAnswer {
  return {
    eventId: row.id,
    officeId: row.officeId,
    patientKey: row.patientKey,
    kind: row.kind,
    occurredAt: new Date(Number(row.eventAt)).toISOString(),
    receivedAt: new Date(Number(row.receivedAt)).toISOString(),
    applied: Boolean(row.applied),
    active: Boolean(row.activeAfter),
  };
}

/** The events recorded under some of `keys` (one index lookup per key, however many events the office has). */
export function knownRowsRead(db: Database, officeId: string, keys: readonly string[]) {
  // Driven by the keys (CROSS JOIN keeps json_each the outer loop).
  return db.all<KnownRow>(sql`SELECT x.id, x.office_id AS officeId, x.patient_key AS patientKey, x.kind, x.event_at AS eventAt, x.received_at AS receivedAt,
      x.idempotency_key AS idempotencyKey, x.request_hash AS requestHash, x.applied, x.active_after AS activeAfter
    FROM json_each(${JSON.stringify(keys)}) k CROSS JOIN patient_events x ON x.office_id = ${officeId} AND x.idempotency_key = k.value`);
}

/** True when a batch was refused because one of its events' keys is recorded already (the batch rolled back whole). */
export const isEventKeyTaken = (err: unknown) => dbErrorMatches(err, /UNIQUE constraint failed: patient_events\.office_id, patient_events\.idempotency_key/);

/**
 * The group's one batch (one round trip, one transaction). Everything it writes is conditional
 * on `guard`: the office still is as the object believed (exists, billing start, canceled or
 * not) and none of the keys of the events it refuses is in the database (this object's store was
 * lost: those replay). A key of an event it records that the database has is refused by the
 * events' unique index, which rolls the whole batch back (`isEventKeyTaken`): the object reads
 * those events and decides again. Checking every key first cost each event two index lookups
 * more (docs/performance.md, "Bulk events").
 * Reads first (the office, the events under the refused events' keys: what the object decides
 * again with when the guard fails), then
 * 1. the events, each with `applied` and `active_after` from the patient's state before the batch
 *    and the group's earlier events of the same patient (as if recorded one by one); then what
 *    each came to, read back in the group's order (one digit each);
 * 2. each patient's state, once, from its latest event of the group (§5.2), read back from the
 *    events just inserted (their id range: nothing when the guard failed);
 * 3. the draft's billable set (§5.5) as the single-event batch keeps it, event by event: counted
 *    when active after the event or activated inside the cycle; a late deactivation dated before
 *    the cycle's start drops a patient with no activation inside it, unless a later event of the
 *    group left them active;
 * 4. the patients line repriced, the draft re-totalled.
 * The guard conditions the events' insert; what follows it, and the audit entries the caller adds,
 * are conditional on the group's first event being there (`guard` as returned). With nothing to
 * record, the guard itself is read and conditions the audit entries.
 */
export function groupBatch(db: Database, officeId: string, plan: GroupPlan, receivedAt: number) {
  // Evaluated before this batch inserts anything; the keys' part only when events are refused.
  const officeAsBelieved = sql`EXISTS (SELECT 1 FROM ${offices} WHERE ${offices.id} = ${officeId} AND ${offices.billingStart} = ${plan.office.billingStart}
      AND (${offices.status} = 'canceled') = ${plan.office.status === "canceled" ? 1 : 0})`;
  const guard =
    plan.refusedKeys.length === 0
      ? sql`(${officeAsBelieved})`
      : sql`(${officeAsBelieved} AND NOT EXISTS (SELECT 1 FROM json_each(${JSON.stringify(plan.refusedKeys)}) k CROSS JOIN patient_events x ON x.office_id = ${officeId} AND x.idempotency_key = k.value))`;
  const reads = [
    db.select({ status: offices.status, billingStart: offices.billingStart }).from(offices).where(sql`${offices.id} = ${officeId}`),
    knownRowsRead(db, officeId, plan.refusedKeys),
  ] as const;
  // Nothing to record (only refusals to audit): the guard is read, and conditions the audit entries.
  if (plan.recs.length === 0) return { guard, reads: [...reads, db.all<{ ok: number }>(sql`SELECT ${guard} AS ok`)] as const, writes: [] as BatchItem<"sqlite">[], held: (r: unknown[]) => (r[2] as { ok: number }[])[0]?.ok === 1, states: (_: unknown[]) => "" };
  // After the events' insert: whether the guard held is whether the group's first event is there.
  const recorded = sql`EXISTS (SELECT 1 FROM ${patientEvents} WHERE ${patientEvents.id} = ${plan.recs[0]!.eventId})`;
  // The group's events: one range of ids (groupEventIds), in the group's order.
  const first = plan.recs[0]!.eventId;
  const last = plan.recs.at(-1)!.eventId;

  // Each event's id is the group's prefix and its place (json_each's key), its order key its time
  // and kind (§5.2): neither travels in the JSON.
  const prefix = first.slice(0, -8);
  const events = JSON.stringify(plan.recs.map((r) => [r.input.patientKey, r.input.kind, r.input.occurredAt, r.input.idempotencyKeyHash, r.input.requestHash, r.upTo]));
  const before = sql`max(coalesce(p.changed_at * 2 + (1 - p.active), -1), e.up_to)`;
  const draft = currentDraftId(officeId);
  const writes: BatchItem<"sqlite">[] = [
    db.run(sql`INSERT INTO ${patientEvents} (id, office_id, patient_key, kind, event_at, received_at, idempotency_key, request_hash, applied, active_after)
      SELECT ${prefix} || printf('%08x', e.idx), ${officeId}, e.patient_key, e.kind, e.event_at, ${receivedAt}, e.idempotency_key, e.request_hash,
        ${before} = e.event_at * 2 + (e.kind = 'deactivate'), (${before} % 2) = 0
      FROM (SELECT key AS idx, ${each(sql`${events}`, "patient_key", "kind", "event_at", "idempotency_key", "request_hash", "up_to")}) e
      LEFT JOIN patients p ON p.office_id = ${officeId} AND p.patient_key = e.patient_key
      WHERE ${guard}`),
    // What each event came to, in the group's order: one digit per event (applied × 2 + active
    // after), instead of a returned row each; empty when the guard failed.
    db.all<{ states: string | null }>(sql`SELECT group_concat(applied * 2 + active_after, '' ORDER BY id) AS states FROM ${patientEvents} WHERE id BETWEEN ${first} AND ${last}`),
    db.run(sql`INSERT INTO patients (office_id, patient_key, active, changed_at)
      SELECT ${officeId}, l.patient_key, l.k % 2 = 0, l.k / 2
      FROM (SELECT patient_key, max(event_at * 2 + (kind = 'deactivate')) AS k FROM ${patientEvents} WHERE id BETWEEN ${first} AND ${last} GROUP BY patient_key) l
      WHERE true
      ON CONFLICT (office_id, patient_key) DO UPDATE SET active = excluded.active, changed_at = excluded.changed_at
      WHERE excluded.changed_at > patients.changed_at OR (excluded.changed_at = patients.changed_at AND excluded.active = 0)`),
    db.run(sql`INSERT INTO invoice_patients (invoice_id, office_id, patient_key, counted_at)
      SELECT d.id, ${officeId}, e.patient_key, ${receivedAt}
      FROM patient_events e, (SELECT id, period_start_at AS ps, period_end_at AS pe FROM invoices WHERE id = ${draft}) d
      WHERE e.id BETWEEN ${first} AND ${last} AND e.event_at < d.pe AND (e.active_after = 1 OR (e.kind = 'activate' AND e.event_at >= d.ps))
      ON CONFLICT DO NOTHING`),
    db.run(sql`WITH d(id, ps) AS (SELECT id, period_start_at FROM invoices WHERE id = ${draft})
      DELETE FROM invoice_patients WHERE invoice_id = (SELECT id FROM d) AND patient_key IN (
        SELECT e.patient_key FROM patient_events e
        WHERE e.id BETWEEN ${first} AND ${last} AND e.kind = 'deactivate' AND e.active_after = 0 AND e.event_at < (SELECT ps FROM d)
          AND NOT EXISTS (SELECT 1 FROM patient_events x WHERE x.office_id = ${officeId} AND x.patient_key = e.patient_key AND x.kind = 'activate' AND x.event_at >= (SELECT ps FROM d))
          AND NOT EXISTS (SELECT 1 FROM patient_events e2 WHERE e2.office_id = ${officeId} AND e2.patient_key = e.patient_key AND e2.id > e.id AND e2.id <= ${last} AND e2.active_after = 1))`),
    db.run(sql`${repricePatientsLine(currentPatientsLineId(officeId))} AND ${recorded}`),
    db.run(sql`${retotalInvoice(draft, receivedAt)} AND ${recorded}`),
  ];
  const states = (r: unknown[]) => (r[reads.length + 1] as { states: string | null }[])[0]?.states ?? "";
  return { guard: recorded, reads, writes, held: (r: unknown[]) => states(r).length > 0, states };
}

/**
 * ISO 8601 strings of times in ms, each formatted once per group: a group's events share their
 * receipt time and often their event times, and Date formatting was a seventh of the office
 * object's thread in a profile of the bulk phase (docs/performance.md).
 */
function isoTimes(): (ms: number) => string {
  const made = new Map<number, string>();
  return (ms) => {
    let text = made.get(ms);
    if (text === undefined) {
      text = new Date(ms).toISOString();
      made.set(ms, text);
    }
    return text;
  };
}

/**
 * The answers of a group, per request and in order, once its batch has recorded its events:
 * `states` holds one digit per recorded event, in the group's order (applied × 2 + active after).
 */
export function groupOutcomes(plan: GroupPlan, officeId: string, receivedAt: number, states: string): EventOutcome[][] {
  if (states.length !== plan.recs.length) throw new Error("the batch's answer does not cover the recorded events");
  plan.recs.forEach((rec, i) => {
    const state = states.charCodeAt(i) - 48;
    rec.applied = (state & 2) !== 0;
    rec.active = (state & 1) !== 0;
  });
  const iso = isoTimes();
  const received = iso(receivedAt);
  const answer = (rec: Rec): PatientEventAnswer => ({
    eventId: rec.eventId,
    officeId,
    patientKey: rec.input.patientKey,
    kind: rec.input.kind,
    occurredAt: iso(rec.input.occurredAt),
    receivedAt: received,
    applied: rec.applied!,
    active: rec.active!,
  });
  return plan.slots.map((slots) =>
    slots.map((s): EventOutcome => ("outcome" in s ? s.outcome : "rec" in s ? { status: "applied", event: answer(s.rec) } : { status: "replayed", event: answer(s.sameAs) })),
  );
}
