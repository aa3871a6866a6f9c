import { asc, eq, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { invoiceLines, invoicePatients, invoices } from "../db/invoices";
import { currentDraftId } from "../db/billing-sql";
import { tieredAmount } from "../billing/pricing";
import { offices } from "../db/offices";
import { ApiError } from "../errors";
import { newId } from "../security/request-id";
import { chargeReads, chargeStatements, type ChargeInput } from "./charges";
import { minimumCharge } from "../billing/minimum";
import { closeReads, closeStateFrom, closeStatements } from "./close-cycle";
import { tierLineRows } from "./invoice-lines";
import { lineDescriptions } from "../billing/invoice";
import { applyDiscountReads, applyDiscountStatements, removeDiscountStatements } from "./discounts";
import { discountRead, type OfficeDiscountRow } from "./reads";
import { subscriptionReads, subscriptionStatements, type SubscriptionChange } from "./subscription";
import { profileStatements, type OfficePatch } from "./profile";
import { onboardingStatements, sameOnboarding, type OnboardingInput } from "./onboarding";
import { eventRequestHash, eventRequestHashSync, type PatientEventInput, type PatientEventRequest } from "./patient-events";
import type { EventOutcome } from "./patient-batch";
import { PatientEventGroups } from "./patient-group";
import { patientEvents, patients } from "../db/patients";
import { advancePatientKey, advancePatientKeySync } from "../security/crypto";
import { type OfficeResult } from "./result";
import { currentPatientKeyVersion, loadConfig, patientKeyChain, taxModeOffered } from "../config";
import * as clock from "../clock";
import { OfficePatients } from "./office-patients";
import type { Actor, ClosedCycle, UpcomingInvoice } from "./office-core";

export type { Actor, ClosedCycle, OfficeObjectInfo, UpcomingInvoice } from "./office-core";

/** Pseudonyms (or events) rewritten per statement by a patient key rotation. */
const REKEY_CHUNK = 200;

/** A close catches up at most this many missed cycles in one call (three years). */
const MAX_CYCLES_PER_CLOSE = 36;

/**
 * One instance per office (addressed by `idFromName(officeId)`): the single writer of that office's
 * billing state and of its audit chain. Its own SQLite storage keeps the office it is bound to,
 * an operation ledger, the audit chain head and idempotency answers; the billing data lives in
 * Turso and every decision about it is taken inside the operation's own database batch. Public
 * methods are the RPC surface; they return OfficeResult and never throw across RPC.
 */
export class OfficeBilling extends OfficePatients {

  #groups: PatientEventGroups | undefined;

  /**
   * Patient activations and deactivations reported by the clinical system (docs/payment-plan.md
   * §5.10), answered per event in order; a single report is a request with one event. Requests
   * that arrive while a batch is in flight go together into the next one (group commit, §5.11),
   * each with its own answers, idempotency and audit entry; a repeated key of a small request is
   * answered from this object's store without touching the database, a large request's by the
   * events' unique key (§5.11).
   */
  async patientEvents(officeId: string, requests: PatientEventRequest[], actor: Actor): Promise<OfficeResult<EventOutcome[]>> {
    this.#groups ??= new PatientEventGroups({
      db: this.db,
      idempotency: this.idempotency,
      exclusive: (id, operation, fn) => this.exclusive(id, operation, fn),
      toInputs: (id, reqs) => this.recordedEvents(id, reqs),
      keyVersion: async (id) => (await this.patientKeyVersion(id)) ?? 1,
      write: (id, statements, audit, conditional) => this.write<unknown[]>(id, statements, audit, conditional),
      now: () => clock.now(),
    });
    return this.#groups.submit(officeId, requests, actor);
  }

  /** The route's version-1 pseudonyms carried to the office's version, and the events' request hashes. */
  private async recordedEvents(officeId: string, requests: PatientEventRequest[]): Promise<{ version: number; inputs: PatientEventInput[] }> {
    const chain = patientKeyChain(loadConfig(this.env));
    const version = (await this.patientKeyVersion(officeId)) ?? 1; // no office: the group answers 404
    if (version > chain.length + 1) {
      console.error(JSON.stringify({ level: "error", msg: "office pseudonyms are under a patient key version this deployment lacks", officeId, version }));
      throw new ApiError("SERVICE_UNAVAILABLE", "Patient events cannot be recorded for this office right now.");
    }
    const inputs = requests.map((request) => {
      const patientKey = advancePatientKeySync(chain, request.rootPatientKey, 1, version);
      return {
        kind: request.kind,
        patientKey,
        occurredAt: request.occurredAt,
        idempotencyKeyHash: request.idempotencyKeyHash,
        requestHash: eventRequestHashSync(request.kind, patientKey, request.occurredAt),
      };
    });
    return { version, inputs };
  }

  /**
   * Moves every pseudonym of this office (patients, patient_events, invoice_patients) from the
   * office's version to the current one (PATIENT_KEY_CHAIN), deriving each new pseudonym from
   * the stored one, and recomputes the events' request hashes, in one transaction with the new
   * version and the audit entry: events queue behind it in this object, so none is lost or
   * recorded under a stale version. Re-running it for a rotated office does nothing. Audit
   * entries already written keep the pseudonym they were written with (the chain is append-only).
   */
  async rekeyPatients(officeId: string, actor: Actor): Promise<OfficeResult<{ fromVersion: number; toVersion: number; patients: number; events: number }>> {
    return this.exclusive(officeId, "patient_keys.rotate", async () => {
      const chain = patientKeyChain(loadConfig(this.env));
      const target = chain.length + 1;
      const from = await this.patientKeyVersion(officeId, true); // read afresh: this is the moment it changes
      if (from === null) throw new ApiError("NOT_FOUND", "No such office.");
      if (from > target) throw new ApiError("SERVICE_UNAVAILABLE", "This office's pseudonyms are under a patient key version this deployment lacks.");
      if (from === target) return { fromVersion: from, toVersion: target, patients: 0, events: 0 };

      const [keyRows, eventRows] = await this.db.batch([
        this.db.all<{ key: string }>(sql`SELECT patient_key AS key FROM ${patients} WHERE office_id = ${officeId}
          UNION SELECT patient_key FROM ${patientEvents} WHERE office_id = ${officeId}
          UNION SELECT patient_key FROM ${invoicePatients} WHERE invoice_id IN (SELECT id FROM ${invoices} WHERE office_id = ${officeId})`),
        this.db.select({ id: patientEvents.id, kind: patientEvents.kind, eventAt: patientEvents.eventAt, patientKey: patientEvents.patientKey }).from(patientEvents).where(eq(patientEvents.officeId, officeId)),
      ]);
      const next = new Map<string, string>();
      for (const { key } of keyRows) next.set(key, await advancePatientKey(chain, key, from, target));
      const stillAt = sql`(SELECT patient_key_version FROM ${offices} WHERE id = ${officeId}) = ${from}`;
      const statements: BatchItem<"sqlite">[] = [];
      const pairs = [...next];
      for (let i = 0; i < pairs.length; i += REKEY_CHUNK) {
        const values = sql.join(pairs.slice(i, i + REKEY_CHUNK).map(([old, key]) => sql`(${old}, ${key})`), sql`, `);
        // invoice_patients by its primary key, through the office's invoices (it has no index by office).
        const scopes = [
          [patients, sql`office_id = ${officeId}`],
          [invoicePatients, sql`invoice_id IN (SELECT id FROM ${invoices} WHERE office_id = ${officeId})`],
        ] as const;
        for (const [table, scope] of scopes) {
          statements.push(this.db.run(sql`WITH m(old, key) AS (VALUES ${values})
            UPDATE ${table} SET patient_key = (SELECT key FROM m WHERE m.old = ${table}.patient_key)
            WHERE ${scope} AND patient_key IN (SELECT old FROM m) AND ${stillAt}`));
        }
      }
      for (let i = 0; i < eventRows.length; i += REKEY_CHUNK) {
        const rows = await Promise.all(
          eventRows.slice(i, i + REKEY_CHUNK).map(async (e) => {
            const key = next.get(e.patientKey)!;
            return sql`(${e.id}, ${key}, ${await eventRequestHash(e.kind, key, e.eventAt)})`;
          }),
        );
        statements.push(this.db.run(sql`WITH m(id, key, hash) AS (VALUES ${sql.join(rows, sql`, `)})
          UPDATE ${patientEvents} SET patient_key = (SELECT key FROM m WHERE m.id = ${patientEvents}.id), request_hash = (SELECT hash FROM m WHERE m.id = ${patientEvents}.id)
          WHERE office_id = ${officeId} AND id IN (SELECT id FROM m) AND ${stillAt}`));
      }
      statements.push(this.db.run(sql`UPDATE ${offices} SET patient_key_version = ${target} WHERE id = ${officeId} AND patient_key_version = ${from}`));
      await this.write<unknown[]>(officeId, () => statements, [
        { ...actor, action: "patient_keys.rotate", outcome: "succeeded", officeId, targetIds: [officeId], details: { fromVersion: from, toVersion: target, patients: next.size, events: eventRows.length } },
      ]);
      this.rememberPatientKeyVersion(target);
      // Replays of earlier events are answered from the database from now on (their hashes moved).
      this.#groups?.keepAnswers(); // the last group's answers, kept late, are forgotten with the others
      this.idempotency.forgetPatientEvents();
      return { fromVersion: from, toVersion: target, patients: next.size, events: eventRows.length };
    });
  }

  /**
   * Onboards the office this object serves: office, first draft invoice, setup-fee invoice, and
   * the audit entry, in one batch.
   */
  async onboard(officeId: string, input: OnboardingInput, actor: Actor): Promise<OfficeResult<{ office: typeof offices.$inferSelect; invoices: (typeof invoices.$inferSelect)[]; replayed: boolean }>> {
    return this.thenSync(officeId, this.exclusive(officeId, "office.onboard", async () => {
      if (input.idempotent) {
        // A keyed request: this object may already serve the office a first attempt onboarded.
        const [existing, existingInvoices] = await this.db.batch([
          this.db.select().from(offices).where(eq(offices.id, officeId)),
          this.db.select().from(invoices).where(eq(invoices.officeId, officeId)),
        ]);
        if (existing[0]) {
          if (!sameOnboarding(existing[0], input)) {
            return this.refuse(officeId, actor, "office.onboard", [officeId], new ApiError("CONFLICT", "This Idempotency-Key was already used to onboard an office with different details."));
          }
          return { office: existing[0], invoices: existingInvoices, replayed: true };
        }
      }
      const now = clock.now();
      const keyVersion = currentPatientKeyVersion(loadConfig(this.env));
      const plan = onboardingStatements(this.db, officeId, input, now, keyVersion);
      const results = await this.write<unknown[]>(
        officeId,
        () => plan.statements,
        [{ ...actor, action: "office.onboard", outcome: "succeeded", officeId, targetIds: [officeId, input.planVersion.id, plan.draftId, ...(plan.setupId ? [plan.setupId] : [])] }],
        undefined,
        () => plan.reads,
      );
      const [officeRows, invoiceRows] = results.slice(-2) as [(typeof offices.$inferSelect)[], (typeof invoices.$inferSelect)[]];
      if (officeRows[0]) this.rememberPatientKeyVersion(officeRows[0].patientKeyVersion);
      return { office: officeRows[0]!, invoices: invoiceRows, replayed: false };
    }));
  }

  /**
   * Closes every cycle of this office that has ended by `at` (docs/payment-plan.md §6.3), each
   * missed cycle on its own window from the event history, then opens the current one: at most
   * two database round trips whatever the number of cycles — one batch of reads (office, draft,
   * plan versions, the events the rule needs), then one batch that finalizes, inserts and moves
   * the office on, with one audit entry per closed cycle. Re-running it finds nothing due.
   */
  async closeCycles(officeId: string, at: number, actor: Actor): Promise<OfficeResult<{ closed: ClosedCycle[]; status: string | null }>> {
    return this.thenSync(officeId, this.exclusive(officeId, "cycle.close", async () => {
      const state = closeStateFrom(await this.db.batch(closeReads(this.db, officeId)));
      const { office, draft } = state;
      if (!office) throw new ApiError("NOT_FOUND", "No such office.");
      if (office.status === "canceled" || office.cycleEndAt > at) return { closed: [], status: office.status };
      if (!draft) {
        console.error(JSON.stringify({ level: "error", msg: "office has an ended cycle but no draft invoice", officeId }));
        throw new ApiError("INTERNAL", "The office's current invoice is missing.");
      }
      // `at` decides what is due; the records carry the real time of the close.
      const now = clock.now();
      const plan = closeStatements(this.db, { ...state, office, draft }, at, now);
      const closedRow = () => this.db.select({ finalizedAt: invoices.finalizedAt }).from(invoices).where(eq(invoices.id, draft.id));
      await this.write<unknown[]>(
        officeId,
        () => plan.statements,
        plan.closed.map((c, i) => ({
          ...actor,
          action: "cycle.close",
          outcome: "succeeded" as const,
          officeId,
          targetIds: [c.invoiceId, ...(c.nextInvoiceId ? [c.nextInvoiceId] : [])],
          details: {
            period: c.cycle,
            total: c.total,
            next: plan.closed[i + 1]?.cycle ?? plan.opened?.cycle ?? null,
            status: c.statusAfter,
          },
        })),
        // The entries are written, and the chain head moves, only if this close finalized the draft.
        { auditIf: plan.finalizedByThisClose, recorded: (r) => (r.at(-1) as { finalizedAt: number | null }[])[0]?.finalizedAt === now },
        () => [closedRow()],
      );
      const closed = plan.closed.map((c) => ({ invoiceId: c.invoiceId, periodStart: c.cycle.start, periodEnd: c.cycle.end, total: c.total, nextInvoiceId: c.nextInvoiceId }));
      return { closed, status: plan.closed.length >= MAX_CYCLES_PER_CLOSE && plan.opened && plan.opened.endAt <= at ? null : plan.status };
    }));
  }

  /**
   * What `closeCycles` would close by `at`, computed the same way from the same reads, changing
   * nothing (one database round trip): the dry run of the invoicing job. A missed cycle's invoice
   * does not exist yet (`invoiceId: null`).
   */
  async previewClose(officeId: string, at: number): Promise<OfficeResult<{ closed: (Omit<ClosedCycle, "invoiceId" | "nextInvoiceId"> & { invoiceId: string | null })[] }>> {
    return this.exclusive(officeId, "cycle.preview", async () => {
      const state = closeStateFrom(await this.db.batch(closeReads(this.db, officeId)));
      const { office, draft } = state;
      if (!office) throw new ApiError("NOT_FOUND", "No such office.");
      if (office.status === "canceled" || office.cycleEndAt > at || !draft) return { closed: [] };
      const plan = closeStatements(this.db, { ...state, office, draft }, at, clock.now());
      return { closed: plan.closed.map((c, i) => ({ invoiceId: i === 0 ? c.invoiceId : null, periodStart: c.cycle.start, periodEnd: c.cycle.end, total: c.total })) };
    });
  }

  /**
   * The current cycle's invoice as its close would finalize it now (`GET …/invoices/upcoming`):
   * `closeStatements` run on the close's own reads at the cycle's end with the events known now,
   * nothing written but the read's audit entry, in one round trip. Aggregates only: the billable
   * patients' keys never leave this method.
   */
  async previewUpcoming(officeId: string, actor: Actor): Promise<OfficeResult<UpcomingInvoice>> {
    return this.exclusive(officeId, "invoice.upcoming", async () => {
      const reads = closeReads(this.db, officeId);
      const lineRows = this.db.select().from(invoiceLines).where(sql`${invoiceLines.invoiceId} = ${currentDraftId(officeId)}`).orderBy(asc(invoiceLines.position), asc(invoiceLines.rankFrom));
      const results = await this.write<unknown[]>(
        officeId,
        () => [...reads, lineRows],
        [{ ...actor, action: "invoice.upcoming", outcome: "allowed", officeId, targetIds: [officeId] }],
        { auditIf: sql`EXISTS (SELECT 1 FROM ${offices} WHERE ${offices.id} = ${officeId})`, recorded: (r) => (r[0] as unknown[]).length > 0 },
      );
      const state = closeStateFrom(results.slice(0, reads.length));
      const lines = results[reads.length] as (typeof invoiceLines.$inferSelect)[];
      const { office, draft } = state;
      if (!office) throw new ApiError("NOT_FOUND", "No such office.");
      if (office.status === "canceled") throw new ApiError("CONFLICT", "The office's subscription is canceled; it has no upcoming invoice.");
      if (!draft) throw new ApiError("CONFLICT", "The office has no open cycle.");
      // The close of the current cycle, due at its end: exactly one cycle closed, the next opened.
      const plan = closeStatements(this.db, { ...state, office, draft }, office.cycleEndAt, clock.now());
      const bill = plan.closed[0]!;
      const draftVersion = state.versions.find((v) => v.id === (draft.planVersionId ?? office.planVersionId)) ?? state.versions.find((v) => v.id === office.planVersionId)!;
      const tierLines = tierLineRows(draft.id, bill.cycle, draft.inTrial ? [] : bill.tiers, bill.includedPatients, draft.updatedAt).map((l) => ({ ...l, id: null }));
      const others = lines.filter((l) => l.kind !== "patients" && l.amount !== 0);
      // The discount line the close will add, after every other line (§6.10).
      const discountLine =
        bill.discount < 0
          ? [{ id: null, invoiceId: draft.id, kind: "discount" as const, description: lineDescriptions.discount(bill.cycle.start), category: null, internalNote: null, quantity: 1, unitAmount: null, rankFrom: null, rankTo: null, amount: bill.discount, periodStart: bill.cycle.start, periodEnd: bill.cycle.end, position: 1000, createdAt: draft.updatedAt }]
          : [];
      const shown = [...tierLines, ...others, ...discountLine];
      const total = bill.total;
      const next = plan.opened;
      const nextVersion = next ? state.versions.find((v) => v.id === next.versionId) : undefined;
      return {
        office: { id: office.id, status: office.status, cancelAtPeriodEnd: office.cancelAtPeriodEnd },
        invoice: { ...draft, subtotal: total, total, periodEndAt: bill.endAt },
        lines: shown,
        patients: {
          billable: bill.quantity,
          included: draftVersion.includedPatients,
          tiers: draft.inTrial ? [] : tieredAmount(bill.quantity, draftVersion.tiers, draftVersion.includedPatients).tiers,
        },
        next: next
          ? {
              periodStart: next.cycle.start,
              periodEnd: next.cycle.end,
              planVersionId: next.versionId,
              planId: nextVersion?.planId ?? null,
              planChanged: next.versionId !== (draft.planVersionId ?? office.planVersionId),
              currency: nextVersion?.currency ?? draft.currency,
              baseFee: next.baseFee,
              inTrial: next.inTrial,
              status: next.statusAfter,
            }
          : null,
        statusAfterClose: plan.status,
        minimumCharge: minimumCharge(draft.currency),
        settlement: bill.settlement,
      };
    });
  }

  /** A plan change, a cancellation or a resume (docs/payment-plan.md §4): two round trips. */
  async changeSubscription(officeId: string, change: SubscriptionChange, actor: Actor): Promise<OfficeResult<typeof offices.$inferSelect>> {
    const action = change.type === "plan" ? "subscription.plan_change" : change.type === "cancel" ? "subscription.cancel" : "subscription.resume";
    return this.thenSync(officeId, this.exclusive(officeId, action, async () => {
      const [officeRows, draftRows, lines, versions] = await this.db.batch(subscriptionReads(this.db, officeId, change));
      const office = officeRows[0];
      if (!office) throw new ApiError("NOT_FOUND", "No such office.");
      const now = clock.now();
      let statements;
      try {
        statements = subscriptionStatements(this.db, { office, draft: draftRows[0], lines, versions }, change, now);
      } catch (err) {
        if (err instanceof ApiError) await this.refuse(officeId, actor, action, [officeId], err);
        throw err;
      }
      const results = await this.write<unknown[]>(
        officeId,
        () => statements,
        [{ ...actor, action, outcome: "succeeded", officeId, targetIds: [officeId, ...(draftRows[0] ? [draftRows[0].id] : [])], details: { ...change } }],
        undefined,
        () => [this.db.select().from(offices).where(eq(offices.id, officeId))],
      );
      return (results.at(-1) as (typeof offices.$inferSelect)[])[0]!;
    }));
  }

  /** A change to the office's profile or settings (docs/payment-plan.md §4.2): one read, one batch with its audit entry. */
  async updateProfile(officeId: string, patch: OfficePatch, actor: Actor): Promise<OfficeResult<typeof offices.$inferSelect>> {
    return this.thenSync(officeId, this.exclusive(officeId, "office.update", async () => {
      const [office] = await this.db.select().from(offices).where(eq(offices.id, officeId));
      if (!office) throw new ApiError("NOT_FOUND", "No such office.");
      let plan;
      try {
        const config = loadConfig(this.env);
        plan = profileStatements(this.db, office, patch, clock.now(), { stripe_tax: taxModeOffered(config, "stripe_tax"), manual: taxModeOffered(config, "manual") });
      } catch (err) {
        if (err instanceof ApiError) await this.refuse(officeId, actor, "office.update", [officeId], err);
        throw err;
      }
      if (plan.statements.length === 0) return office;
      const results = await this.write<unknown[]>(
        officeId,
        () => plan.statements,
        [{ ...actor, action: "office.update", outcome: "succeeded", officeId, targetIds: [officeId], details: { fields: plan.changed } }],
        undefined,
        () => [this.db.select().from(offices).where(eq(offices.id, officeId))],
      );
      return (results.at(-1) as (typeof offices.$inferSelect)[])[0]!;
    }));
  }

  /** Applies a coupon to the office (platform_admin, §6.10): one read, one batch with the redemption and its audit entry. */
  async applyDiscount(officeId: string, code: string, actor: Actor): Promise<OfficeResult<OfficeDiscountRow>> {
    return this.exclusive(officeId, "discount.apply", async () => {
      const [officeRows, currencyRows, couponRows, openRows] = await this.db.batch(applyDiscountReads(this.db, officeId, code));
      const now = clock.now();
      let plan;
      try {
        plan = applyDiscountStatements(this.db, officeId, { office: officeRows[0], currency: currencyRows[0]?.currency, coupon: couponRows[0], open: openRows[0] }, actor.actorSub, now);
      } catch (err) {
        if (err instanceof ApiError && officeRows[0]) await this.refuse(officeId, actor, "discount.apply", [officeId], err);
        throw err;
      }
      const results = await this.write<unknown[]>(
        officeId,
        () => plan.statements,
        [{ ...actor, action: "discount.apply", outcome: "succeeded", officeId, targetIds: [officeId, plan.id, couponRows[0]!.id] }],
        { auditIf: plan.recorded, recorded: (r) => (r.at(-1) as unknown[]).length > 0 },
        () => [discountRead(this.db, officeId)],
      );
      const row = (results.at(-1) as OfficeDiscountRow[])[0];
      if (!row || row.id !== plan.id) throw new ApiError("CONFLICT", "The coupon could not be applied: it was redeemed to its limit, or the office got a discount, meanwhile.");
      return row;
    });
  }

  /** Removes the office's open discount (platform_admin): later closes apply none. */
  async removeDiscount(officeId: string, actor: Actor): Promise<OfficeResult<{ removed: string }>> {
    return this.exclusive(officeId, "discount.remove", async () => {
      const [officeRows, openRows] = await this.db.batch([this.db.select({ id: offices.id }).from(offices).where(eq(offices.id, officeId)), discountRead(this.db, officeId)] as const);
      if (!officeRows[0]) throw new ApiError("NOT_FOUND", "No such office.");
      const open = openRows[0];
      if (!open) throw new ApiError("NOT_FOUND", "The office has no discount.");
      await this.write(officeId, () => removeDiscountStatements(this.db, officeId, open.id, clock.now()), [{ ...actor, action: "discount.remove", outcome: "succeeded", officeId, targetIds: [officeId, open.id] }]);
      return { removed: open.id };
    });
  }

  /** A one-off charge (platform_admin): its own finalized invoice, or a line on the current draft. One batch. */
  async addCharge(officeId: string, input: ChargeInput, actor: Actor): Promise<OfficeResult<{ lineId: string; invoiceId: string }>> {
    return this.thenSync(officeId, this.exclusive(officeId, "charge.add", async () => {
      const plan = chargeStatements(this.db, officeId, input, clock.now());
      const results = await this.write<unknown[]>(
        officeId,
        () => plan.statements,
        // The note is internal: it is not copied into the audit trail either.
        [{ ...actor, action: "charge.add", outcome: "succeeded", officeId, targetIds: [plan.lineId, ...(plan.invoiceId ? [plan.invoiceId] : [])], details: { amount: input.amount, category: input.category, mode: input.mode } }],
        { auditIf: plan.recorded, recorded: (r) => (r.at(-1) as unknown[]).length > 0 },
        () => chargeReads(this.db, officeId, plan.lineId),
      );
      const [officeRows, lineRows] = results.slice(-2) as [{ status: string; currency: string }[], (typeof invoices.$inferSelect & { invoiceId: string })[]];
      const line = lineRows[0] as unknown as { invoiceId: string } | undefined;
      if (!officeRows[0]) throw new ApiError("NOT_FOUND", "No such office.");
      if (officeRows[0].status === "canceled") throw new ApiError("CONFLICT", "The office's subscription is canceled; it takes no charges.");
      const minimum = minimumCharge(officeRows[0].currency);
      if (!line && input.mode === "invoice_now" && input.amount < minimum) {
        throw new ApiError("UNPROCESSABLE", `An invoice of its own must be at least Stripe's minimum charge (${minimum} ${officeRows[0].currency} minor units); add the charge to the current invoice instead (mode add_to_current).`);
      }
      if (!line) throw new ApiError("CONFLICT", "The office has no open cycle to add the charge to.");
      return { lineId: plan.lineId, invoiceId: line.invoiceId };
    }));
  }
}
