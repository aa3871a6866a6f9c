import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { offices, type BillingAddress, type OfficeTaxId } from "../db/offices";
import { ApiError } from "../errors";

/** A change to an office's profile and settings (docs/payment-plan.md §4.2); absent fields stay. */
export type OfficePatch = {
  legalName?: string;
  billingEmail?: string;
  billingAddress?: BillingAddress | null;
  taxId?: OfficeTaxId | null;
  timeZone?: string;
  billingAnchorDay?: number;
  /** Collection terms (platform_admin, §10.4): automatic (follow the payment method) or sent with net days. */
  collection?: { method: "automatic" } | { method: "send_invoice"; daysUntilDue: number };
};

/** Fields sent to the office's Stripe customer: a change to one of them raises the profile version. */
const STRIPE_PROFILE = ["legalName", "billingEmail", "billingAddress"] as const;

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export type ProfilePlan = {
  statements: ReturnType<Database["run"]>[];
  /** Names of the fields that change (for the audit entry: names, never values). */
  changed: string[];
};

/**
 * The statements of a profile change, one batch with its audit entry. Profile fields apply at once
 * (the ones Stripe carries raise `profile_version`, which the outbox follows); a time zone or anchor
 * day is kept pending for the close of the current cycle (§4.2.2), and setting the current values
 * clears the pending ones.
 */
export function profileStatements(db: Database, office: typeof offices.$inferSelect, patch: OfficePatch, now: number): ProfilePlan {
  const changed: string[] = [];
  const sets = [];
  const columns = { legalName: "legal_name", billingEmail: "billing_email", billingAddress: "billing_address", taxId: "tax_id" } as const;
  for (const field of ["legalName", "billingEmail", "billingAddress", "taxId"] as const) {
    if (!(field in patch) || patch[field] === undefined) continue;
    const value = patch[field];
    if (same(value, office[field])) continue;
    changed.push(field);
    const stored = value !== null && typeof value === "object" ? JSON.stringify(value) : value;
    sets.push(sql`${sql.raw(columns[field])} = ${stored}`);
  }
  if (patch.collection !== undefined) {
    const netDays = patch.collection.method === "send_invoice" ? patch.collection.daysUntilDue : null;
    if (netDays !== office.netTermsDays) {
      changed.push("collection");
      sets.push(sql`net_terms_days = ${netDays}`);
    }
  }
  const settingsChange = patch.timeZone !== undefined || patch.billingAnchorDay !== undefined;
  if (settingsChange) {
    if (office.status === "canceled" || office.cancelAtPeriodEnd) {
      throw new ApiError("CONFLICT", "The office has no next cycle (it is canceled or set to cancel at period end): its time zone and anchor day cannot change.");
    }
    const timeZone = patch.timeZone ?? office.pendingTimeZone ?? office.timeZone;
    const anchorDay = patch.billingAnchorDay ?? office.pendingAnchorDay ?? office.billingAnchorDay;
    const pending = timeZone === office.timeZone && anchorDay === office.billingAnchorDay ? { timeZone: null, anchorDay: null } : { timeZone, anchorDay };
    if (pending.timeZone !== office.pendingTimeZone || pending.anchorDay !== office.pendingAnchorDay) {
      if (patch.timeZone !== undefined) changed.push("timeZone");
      if (patch.billingAnchorDay !== undefined) changed.push("billingAnchorDay");
      sets.push(sql`pending_time_zone = ${pending.timeZone}`, sql`pending_anchor_day = ${pending.anchorDay}`);
    }
  }
  if (changed.length === 0) return { statements: [], changed };
  if (changed.some((f) => (STRIPE_PROFILE as readonly string[]).includes(f))) sets.push(sql`profile_version = profile_version + 1`);
  sets.push(sql`updated_at = ${now}`);
  return { statements: [db.run(sql`UPDATE ${offices} SET ${sql.join(sets, sql`, `)} WHERE ${eq(offices.id, office.id)}`)], changed };
}
