import { sql } from "drizzle-orm";
import { check, index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { createdAt, epochMs } from "./columns";
import { offices } from "./offices";

export const couponDurations = ["once", "repeating", "forever"] as const;
export type CouponDuration = (typeof couponDurations)[number];

/**
 * A coupon (docs/payment-plan.md §6.10): a whole percentage off, or a fixed amount off in one
 * currency; for one invoice, the first N, or every one. Never changed after creation, only archived.
 */
export const coupons = sqliteTable(
  "coupons",
  {
    id: text("id").primaryKey(),
    code: text("code").notNull(),
    percentOff: integer("percent_off"),
    amountOff: integer("amount_off"),
    currency: text("currency"),
    duration: text("duration", { enum: couponDurations }).notNull(),
    /** Invoices a `repeating` coupon discounts (1–36); null otherwise. */
    durationCycles: integer("duration_cycles"),
    /** No office may take the coupon after this instant. */
    redeemBy: epochMs("redeem_by"),
    maxRedemptions: integer("max_redemptions"),
    timesRedeemed: integer("times_redeemed").notNull().default(0),
    archivedAt: epochMs("archived_at"),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("coupons_code_uq").on(t.code),
    check(
      "coupons_value_ck",
      sql`(${t.percentOff} BETWEEN 1 AND 100 AND ${t.amountOff} IS NULL AND ${t.currency} IS NULL) OR (${t.percentOff} IS NULL AND ${t.amountOff} > 0 AND ${t.currency} IS NOT NULL)`,
    ),
    check("coupons_duration_ck", sql`(${t.duration} = 'repeating' AND ${t.durationCycles} BETWEEN 1 AND 36) OR (${t.duration} != 'repeating' AND ${t.durationCycles} IS NULL)`),
    check("coupons_redemptions_ck", sql`${t.maxRedemptions} IS NULL OR ${t.timesRedeemed} <= ${t.maxRedemptions}`),
  ],
);

/**
 * A coupon applied to an office. At most one open (not ended) per office. `invoicesUsed` counts the
 * monthly invoices it discounted; it ends when a `once`/`repeating` coupon's invoices are used, or
 * when removed.
 */
export const officeDiscounts = sqliteTable(
  "office_discounts",
  {
    id: text("id").primaryKey(),
    officeId: text("office_id")
      .notNull()
      .references(() => offices.id),
    couponId: text("coupon_id")
      .notNull()
      .references(() => coupons.id),
    appliedBy: text("applied_by").notNull(),
    invoicesUsed: integer("invoices_used").notNull().default(0),
    endedAt: epochMs("ended_at"),
    endReason: text("end_reason", { enum: ["used_up", "removed"] }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex("office_discounts_open_uq").on(t.officeId).where(sql`${t.endedAt} IS NULL`),
    index("office_discounts_office_ix").on(t.officeId, t.createdAt),
  ],
);
