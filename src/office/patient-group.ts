import type { SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { offices } from "../db/offices";
import { ApiError } from "../errors";
import type { AuditInput } from "./chain-writer";
import type { IdempotencyStore, StoredAnswer } from "./idempotency";
import { groupAudit, groupBatch, groupOutcomes, isEventKeyTaken, knownAnswer, knownRowsRead, storedAnswer, storedEvent, MAX_GROUP_EVENTS, planGroup, type EventOutcome, type Known, type KnownRow, type OfficeFacts, type Submission } from "./patient-batch";
import type { PatientEventInput, PatientEventRequest } from "./patient-events";
import { failure, ok, type OfficeResult } from "./result";

/** A request's events as the batch records them, and the key version their pseudonyms are at. */
export type Prepared = { version: number; inputs: Submission["inputs"] };

/**
 * A request waiting in the office object for the next batch (§5.11), prepared on arrival while
 * the batch in flight waits for the database: its events (pseudonyms carried to the office's key
 * version, request hashes), made again if a key rotation came in between (it changes the
 * pseudonyms).
 */
type Waiting = {
  officeId: string;
  requests: PatientEventRequest[];
  prepared: Promise<Prepared>;
  actor: Submission["actor"];
  resolve: (r: OfficeResult<EventOutcome[]>) => void;
};

/** What the group commit needs of the office object. */
export type GroupHost = {
  db: Database;
  idempotency: IdempotencyStore;
  /** Runs `fn` as the object's next exclusive operation (a failure result when it could not run it). */
  exclusive: (officeId: string, operation: string, fn: () => Promise<void>) => Promise<OfficeResult<void>>;
  /** The route's version-1 pseudonyms carried to the office's key version, and the request hashes. */
  toInputs: (officeId: string, requests: PatientEventRequest[]) => Promise<Prepared>;
  /** The office's key version now (a rotation runs exclusively: it can fall between arrival and batch). */
  keyVersion: (officeId: string) => Promise<number>;
  /** One audited batch (the office object's write). */
  write: (officeId: string, statements: () => readonly BatchItem<"sqlite">[], audit: AuditInput[], conditional: { auditIf: SQL; recorded: (r: unknown[]) => boolean }) => Promise<unknown[]>;
  now: () => number;
};

/**
 * Requests of fewer events than this use the object's store of first answers (§5.11): their
 * repeats are answered from it, and their answers kept in it. A larger request's keys are checked
 * by the events' unique index alone (isEventKeyTaken): keeping a thousand answers per request in
 * the object's storage, at random places of its key index, took over a quarter of the object's
 * thread in the bulk phase (docs/performance.md), to spare a retried bulk request one round trip.
 */
const STORED_BELOW = 64;

/** Attempts of one group when what the object believed of its office turns out stale. */
const MAX_ATTEMPTS = 4;

/**
 * Group commit of an office's patient events (docs/payment-plan.md §5.11): requests that arrive
 * while a batch is in flight wait here and go, together, into the next one; each gets its own
 * answers, idempotency records and audit entry. A single report is a request with one event.
 */
export class PatientEventGroups {
  #waiting: Waiting[] = [];
  #scheduled = false;
  /** The office as last read; the batch checks it, so it is only ever a guess. */
  #office: OfficeFacts | null = null;

  /** The last group's first answers, until they are in the store (`keepAnswers`). */
  #unkept: (() => void) | null = null;

  constructor(private readonly host: GroupHost) {}

  /** Puts the last group's first answers in the store now, if they are not there yet (before a key rotation forgets the store's answers). */
  keepAnswers(): void {
    const keep = this.#unkept;
    this.#unkept = null;
    keep?.();
  }

  submit(officeId: string, requests: PatientEventRequest[], actor: Submission["actor"]): Promise<OfficeResult<EventOutcome[]>> {
    const prepared = this.host.toInputs(officeId, requests);
    prepared.catch(() => {}); // its failure is the group's, when the batch awaits it
    return new Promise((resolve) => {
      this.#waiting.push({ officeId, requests, prepared, actor, resolve });
      this.schedule(officeId);
    });
  }

  /** Everything that waited, up to a full group, for this office (a request for another office reached the wrong object: its own run refuses it). */
  private take(officeId: string): Waiting[] {
    const group: Waiting[] = [];
    let events = 0;
    while (this.#waiting.length > 0 && this.#waiting[0]!.officeId === officeId && (group.length === 0 || events + this.#waiting[0]!.requests.length <= MAX_GROUP_EVENTS)) {
      const next = this.#waiting.shift()!;
      events += next.requests.length;
      group.push(next);
    }
    return group;
  }

  private schedule(officeId: string) {
    if (this.#scheduled) return;
    this.#scheduled = true;
    let ran = false;
    void this.host
      .exclusive(officeId, "patient.events", async () => {
        ran = true;
        this.#scheduled = false;
        const group = this.take(officeId);
        if (this.#waiting.length > 0) this.schedule(this.#waiting[0]!.officeId);
        try {
          const outcomes = await this.record(officeId, group);
          group.forEach((w, i) => w.resolve(ok(outcomes[i]!)));
        } catch (err) {
          const failed = failure(err);
          for (const w of group) w.resolve(failed);
        }
      })
      .then((result) => {
        if (ran || result.ok) return;
        // The object refused to run it (bound to another office): those requests get its refusal.
        this.#scheduled = false;
        for (const w of this.take(officeId)) w.resolve(result);
        if (this.#waiting.length > 0) this.schedule(this.#waiting[0]!.officeId);
      });
  }

  private async readOffice(officeId: string): Promise<OfficeFacts | null> {
    const [row] = await this.host.db.select({ status: offices.status, billingStart: offices.billingStart }).from(offices).where(eq(offices.id, officeId));
    return row ?? null;
  }

  private async record(officeId: string, group: Waiting[]): Promise<EventOutcome[][]> {
    const { host } = this;
    if (group.length === 0) return [];
    const subs: Submission[] = [];
    // The small requests' keys: looked up in the store (one query for the group: single reports
    // arrive by the hundred a second), and their first answers kept there.
    const smallKeys = new Set<string>();
    const version = await host.keyVersion(officeId);
    for (const w of group) {
      let prepared = await w.prepared;
      if (prepared.version !== version) prepared = await host.toInputs(officeId, w.requests); // rotated since it arrived
      subs.push({ inputs: prepared.inputs, actor: w.actor });
      if (prepared.inputs.length < STORED_BELOW) for (const input of prepared.inputs) smallKeys.add(input.idempotencyKeyHash);
    }
    const stored = smallKeys.size > 0 ? host.idempotency.getMany([...smallKeys]) : new Map<string, StoredAnswer>();
    // Keys the database knew though this object's store did not (its store was lost).
    const fromDb = new Map<string, Known>();
    const known = (input: PatientEventInput): Known | null => {
      const first = stored.get(input.idempotencyKeyHash);
      return first ? { requestHash: first.requestHash, answer: storedAnswer(first.response, input, officeId) } : (fromDb.get(input.idempotencyKeyHash) ?? null);
    };
    /** Events the database recorded under keys this object did not know: their first answers (kept for the small requests' keys). */
    const learn = (rows: KnownRow[]) => {
      for (const row of rows) fromDb.set(row.idempotencyKey, { requestHash: row.requestHash, answer: knownAnswer(row) });
      host.idempotency.putMany(rows.filter((row) => smallKeys.has(row.idempotencyKey)).map((row) => [row.idempotencyKey, { requestHash: row.requestHash, response: storedEvent(row.id, Number(row.receivedAt), row.applied, row.activeAfter) }] as const));
    };
    let office = this.#office ?? (await this.readOffice(officeId));
    if (!office) throw new ApiError("NOT_FOUND", "No such office.");
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const receivedAt = host.now();
      const plan = planGroup(subs, office, receivedAt, known);
      const audit = await groupAudit(plan);
      if (plan.recs.length === 0 && audit.length === 0 && plan.unknownKeys.length === 0) return groupOutcomes(plan, officeId, receivedAt, "");
      const batch = groupBatch(host.db, officeId, plan, receivedAt);
      let results: unknown[];
      try {
        results = await host.write(officeId, () => [...batch.reads, ...batch.writes], audit.map((a) => ({ ...a, officeId })), { auditIf: batch.guard, recorded: batch.held });
      } catch (err) {
        if (!isEventKeyTaken(err)) throw err;
        // Some key it took as new is recorded (its store was lost): those events are read, and the group decided again.
        learn(await knownRowsRead(host.db, officeId, plan.recs.map((r) => r.input.idempotencyKeyHash)));
        continue;
      }
      const fresh = (results[0] as OfficeFacts[])[0] ?? null;
      this.#office = fresh;
      if (batch.held(results)) {
        const outcomes = groupOutcomes(plan, officeId, receivedAt, batch.states(results));
        // The small requests' recorded events' first answers, from what groupOutcomes set on each.
        const first = plan.recs.filter((rec) => smallKeys.has(rec.input.idempotencyKeyHash)).map((rec) => [rec.input.idempotencyKeyHash, { requestHash: rec.input.requestHash, response: storedEvent(rec.eventId, receivedAt, rec.applied!, rec.active!) }] as const);
        // Kept on the next turn of the event loop, once the next group's batch has left (writing
        // them first held that batch back by ~20 ms a group: the store's write, then the output
        // gate). A key of this group repeated in the next one before then is refused by the
        // events' unique index, read and replayed (isEventKeyTaken), as when the store was lost.
        this.keepAnswers();
        const keep = () => host.idempotency.putMany(first);
        this.#unkept = keep;
        setTimeout(() => this.keepAnswers(), 0);
        return outcomes;
      }
      if (!fresh) throw new ApiError("NOT_FOUND", "No such office.");
      office = fresh;
      learn(results[1] as KnownRow[]);
    }
    throw new ApiError("SERVICE_UNAVAILABLE", "Patient events cannot be recorded for this office right now.");
  }
}
