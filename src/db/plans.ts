import { sql } from "drizzle-orm";
import { check, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt } from "./columns";

/** A plan is a name and a status; its prices live in immutable versions. */
export const plans = sqliteTable(
  "plans",
  {
    id: text("id").primaryKey(),
    code: text("code").notNull(),
    name: text("name").notNull(),
    /** `active` plans take new offices; `retired` plans keep their offices but take no new ones. */
    status: text("status", { enum: ["active", "retired"] }).notNull().default("active"),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("plans_code_uq").on(t.code),
    check("plans_status_ck", sql`${t.status} IN ('active','retired')`),
  ],
);

/** One graduated tier: patients up to `upTo` (inclusive, null = unbounded) at `unitAmount` minor units each. */
export type PriceTier = { upTo: number | null; unitAmount: number };

/** Changing a price creates a new version; offices stay on their version until moved. */
export const planVersions = sqliteTable(
  "plan_versions",
  {
    id: text("id").primaryKey(),
    planId: text("plan_id")
      .notNull()
      .references(() => plans.id),
    version: integer("version").notNull(),
    currency: text("currency").notNull(),
    baseFee: integer("base_fee").notNull().default(0),
    /** Graduated per-active-patient tiers, ascending, last one unbounded. */
    tiers: text("tiers", { mode: "json" }).$type<PriceTier[]>().notNull(),
    includedPatients: integer("included_patients").notNull().default(0),
    setupFee: integer("setup_fee").notNull().default(0),
    trialDays: integer("trial_days").notNull().default(0),
    graceDays: integer("grace_days").notNull().default(14),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("plan_versions_plan_version_uq").on(t.planId, t.version),
    check("plan_versions_amounts_ck", sql`${t.baseFee} >= 0 AND ${t.setupFee} >= 0 AND ${t.includedPatients} >= 0 AND ${t.trialDays} >= 0 AND ${t.graceDays} >= 0`),
    check("plan_versions_currency_ck", sql`length(${t.currency}) = 3 AND ${t.currency} = lower(${t.currency})`),
  ],
);
