import type { PriceTier } from "../db/plans";

/**
 * Money rules (docs/payment-plan.md, "Money"). All amounts are integers in minor units of the
 * plan's currency; there are no fractions of a minor unit anywhere.
 */

export type TierCharge = { from: number; to: number | null; quantity: number; unitAmount: number; amount: number };

/**
 * Graduated per-patient pricing with a free allowance. Patients are ranked 1…n; rank r is priced
 * by the tier whose range holds r; the first `included` ranks are free. So with tiers
 * 1–50 at 800, 51–200 at 600, 201+ at 400 and 10 included, 60 patients cost
 * 40 × 800 + 10 × 600 = 38,000.
 */
export function tieredAmount(patients: number, tiers: readonly PriceTier[], included = 0): { amount: number; tiers: TierCharge[] } {
  validateTiers(tiers);
  if (!Number.isSafeInteger(patients) || patients < 0) throw new RangeError("patient count must be a non-negative integer");
  const charges: TierCharge[] = [];
  let lower = 1;
  let amount = 0;
  for (const tier of tiers) {
    const upper = tier.upTo ?? Number.POSITIVE_INFINITY;
    const first = Math.max(lower, included + 1);
    const last = Math.min(upper, patients);
    const quantity = Math.max(0, last - first + 1);
    const tierAmount = quantity * tier.unitAmount;
    charges.push({ from: lower, to: tier.upTo, quantity, unitAmount: tier.unitAmount, amount: tierAmount });
    amount += tierAmount;
    lower = upper + 1;
    if (lower > patients) break;
  }
  return { amount, tiers: charges };
}

/** Tiers must ascend, end unbounded, and price non-negative integers. */
export function validateTiers(tiers: readonly PriceTier[]): void {
  if (tiers.length === 0) throw new RangeError("at least one tier");
  let previous = 0;
  tiers.forEach((t, i) => {
    const last = i === tiers.length - 1;
    if (!Number.isSafeInteger(t.unitAmount) || t.unitAmount < 0) throw new RangeError(`tier ${i + 1}: unit amount must be a non-negative integer`);
    if (last ? t.upTo !== null : !(Number.isSafeInteger(t.upTo) && (t.upTo as number) > previous)) {
      throw new RangeError(last ? "the last tier must be unbounded (upTo null)" : `tier ${i + 1}: upTo must be an integer above ${previous}`);
    }
    previous = t.upTo ?? previous;
  });
}

/**
 * `amount × numerator ÷ denominator`, rounded half up to a whole minor unit (amounts are never
 * negative here). Exact in integers: no floating point touches money.
 */
export function prorate(amount: number, numerator: number, denominator: number): number {
  if (![amount, numerator, denominator].every(Number.isSafeInteger) || amount < 0 || numerator < 0 || denominator <= 0) {
    throw new RangeError("prorate takes non-negative integers and a positive denominator");
  }
  if (numerator >= denominator) return amount;
  const product = BigInt(amount) * BigInt(numerator);
  const d = BigInt(denominator);
  return Number((product * 2n + d) / (2n * d));
}
