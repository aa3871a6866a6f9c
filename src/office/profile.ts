import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { offices, type BillingAddress, type OfficeTaxId } from "../db/offices";
import { ApiError } from "../errors";
import type { taxRateNames } from "../stripe/payloads";

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
  /** The office's tax (platform_admin, §11.1): Stripe Tax or a manual exclusive rate; null removes it. */
  tax?: { mode: "stripe_tax" } | { mode: "manual"; basisPoints: number; name: (typeof taxRateNames)[number] } | null;
};

/** Which tax modes the configuration offers (TAX_MODE, §11.1). */
export type TaxOffer = { stripe_tax: boolean; manual: boolean };

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
export function profileStatements(db: Database, office: typeof offices.$inferSelect, patch: OfficePatch, now: number, offer: TaxOffer = { stripe_tax: false, manual: false }): ProfilePlan {
  const changed: string[] = [];
  const sets = [];
  // Tax (§11.1, §11.7): only a mode the configuration offers; Stripe Tax only with a billing address.
  if (patch.tax && !offer[patch.tax.mode]) throw new ApiError("CONFLICT", `Tax mode ${patch.tax.mode} is not offered by this deployment (TAX_MODE).`);
  const taxMode = patch.tax !== undefined ? (patch.tax?.mode ?? null) : office.taxMode;
  const address = patch.billingAddress !== undefined ? patch.billingAddress : office.billingAddress;
  if (taxMode === "stripe_tax" && !address) throw new ApiError("CONFLICT", "The office's billing address is required for Stripe Tax.");
  if (patch.tax !== undefined) {
    const next = patch.tax === null ? { mode: null, bps: null, name: null } : patch.tax.mode === "manual" ? { mode: "manual", bps: patch.tax.basisPoints, name: patch.tax.name } : { mode: "stripe_tax", bps: null, name: null };
    if (next.mode !== office.taxMode || next.bps !== office.taxRateBps || next.name !== office.taxRateName) {
      changed.push("tax");
      sets.push(sql`tax_mode = ${next.mode}`, sql`tax_rate_bps = ${next.bps}`, sql`tax_rate_name = ${next.name}`);
    }
  }
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
