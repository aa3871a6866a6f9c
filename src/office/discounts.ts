import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { coupons, officeDiscounts } from "../db/discounts";
import { offices } from "../db/offices";
import { planVersions } from "../db/plans";
import { ApiError } from "../errors";
import { newId } from "../security/request-id";
import { discountRead } from "./reads";

/** Round trip 1 of applying a coupon (docs/payment-plan.md §6.10): the office, its plan's currency, the coupon, an open discount. */
export function applyDiscountReads(db: Database, officeId: string, code: string) {
  return [
    db.select().from(offices).where(eq(offices.id, officeId)),
    db.select({ currency: planVersions.currency }).from(planVersions).where(sql`${planVersions.id} = (SELECT plan_version_id FROM ${offices} WHERE id = ${officeId})`),
    db.select().from(coupons).where(eq(coupons.code, code)),
    discountRead(db, officeId),
  ] as const;
}

type ApplyState = {
  office: typeof offices.$inferSelect | undefined;
  currency: string | undefined;
  coupon: typeof coupons.$inferSelect | undefined;
  open: unknown | undefined;
};

/**
 * Round trip 2: the office's discount and the coupon's redemption, one transaction. The checks made
 * on the read are repeated inside the batch (the redemption is counted only while the coupon is
 * redeemable; the discount is inserted only if the redemption was), so two offices racing for a
 * coupon's last redemption cannot both get it.
 */
export function applyDiscountStatements(db: Database, officeId: string, state: ApplyState, appliedBy: string, now: number) {
  const { office, coupon } = state;
  if (!office) throw new ApiError("NOT_FOUND", "No such office.");
  if (!coupon) throw new ApiError("NOT_FOUND", "No coupon has this code.");
  if (office.status === "canceled") throw new ApiError("CONFLICT", "The office's subscription is canceled.");
  if (state.open) throw new ApiError("CONFLICT", "The office already has a discount; remove it first.");
  if (coupon.archivedAt !== null) throw new ApiError("CONFLICT", "This coupon is archived: it takes no new redemptions.");
  if (coupon.redeemBy !== null && coupon.redeemBy <= now) throw new ApiError("CONFLICT", "This coupon has expired.");
  if (coupon.maxRedemptions !== null && coupon.timesRedeemed >= coupon.maxRedemptions) throw new ApiError("CONFLICT", "This coupon has been redeemed as many times as it may be.");
  if (coupon.currency !== null && coupon.currency !== state.currency) throw new ApiError("CONFLICT", `This coupon is an amount in ${coupon.currency.toUpperCase()}; the office is billed in ${String(state.currency).toUpperCase()}.`);
  const id = newId("dsc");
  const redeemable = sql`archived_at IS NULL AND (redeem_by IS NULL OR redeem_by > ${now}) AND (max_redemptions IS NULL OR times_redeemed < max_redemptions)`;
  const statements = [
    db.run(sql`UPDATE ${coupons} SET times_redeemed = times_redeemed + 1 WHERE id = ${coupon.id} AND ${redeemable}
      AND NOT EXISTS (SELECT 1 FROM ${officeDiscounts} WHERE office_id = ${officeId} AND ended_at IS NULL)`),
    db.run(sql`INSERT INTO ${officeDiscounts} (id, office_id, coupon_id, applied_by, created_at) SELECT ${id}, ${officeId}, ${coupon.id}, ${appliedBy}, ${now} WHERE changes() = 1`),
  ];
  return { id, statements, recorded: sql`EXISTS (SELECT 1 FROM ${officeDiscounts} WHERE id = ${id})` };
}

/** Ends the office's open discount (removed by platform_admin); the coupon's redemption stays counted. */
export function removeDiscountStatements(db: Database, officeId: string, discountId: string, now: number) {
  return [db.run(sql`UPDATE ${officeDiscounts} SET ended_at = ${now}, end_reason = 'removed' WHERE id = ${discountId} AND office_id = ${officeId} AND ended_at IS NULL`)];
}
