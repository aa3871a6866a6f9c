import { prorate } from "./pricing";

/** A coupon's value and duration as the close reads them (docs/payment-plan.md §6.10). */
export type CouponTerms = {
  percentOff: number | null;
  amountOff: number | null;
  duration: "once" | "repeating" | "forever";
  durationCycles: number | null;
};

/** An office's open discount: its coupon and how many invoices it has discounted so far. */
export type OpenDiscount = { id: string; coupon: CouponTerms; invoicesUsed: number };

/**
 * The discount of one invoice, as a non-positive amount: `−round_half_up(subtotal × p ÷ 100)` for a
 * percentage, `−min(amount off, subtotal)` for an amount; never more than the subtotal, 0 for a
 * subtotal of 0 or less.
 */
export function discountAmount(coupon: Pick<CouponTerms, "percentOff" | "amountOff">, subtotal: number): number {
  if (!Number.isSafeInteger(subtotal) || subtotal <= 0) return 0;
  const off = coupon.percentOff !== null ? prorate(subtotal, coupon.percentOff, 100) : Math.min(coupon.amountOff ?? 0, subtotal);
  return off === 0 ? 0 : -off;
}

/** How many more invoices the discount may discount (Infinity: forever). */
export function invoicesLeft(d: OpenDiscount): number {
  if (d.coupon.duration === "forever") return Number.POSITIVE_INFINITY;
  const allowed = d.coupon.duration === "once" ? 1 : (d.coupon.durationCycles ?? 0);
  return Math.max(0, allowed - d.invoicesUsed);
}

/**
 * The discounts of consecutive monthly invoices closed together (oldest first), given each one's
 * subtotal before the discount: each invoice that charges something uses one of the discount's
 * invoices; one with a subtotal of 0 uses none (§6.10). Returns the amount per invoice (0: no
 * line), the invoices used, and whether the discount ends with them.
 */
export function discountsFor(discount: OpenDiscount | null, subtotals: readonly number[]): { amounts: number[]; used: number; ended: boolean } {
  if (!discount) return { amounts: subtotals.map(() => 0), used: 0, ended: false };
  let left = invoicesLeft(discount);
  let used = 0;
  const amounts = subtotals.map((subtotal) => {
    if (left <= 0) return 0;
    const amount = discountAmount(discount.coupon, subtotal);
    if (amount === 0) return 0;
    left -= 1;
    used += 1;
    return amount;
  });
  return { amounts, used, ended: used > 0 && left <= 0 };
}
