/**
 * Stripe's minimum charge amounts (docs/payment-plan.md §8.9). Stripe does not charge less than a
 * currency's minimum: an invoice whose amount due is below it is marked paid without a charge and
 * the amount is added to the customer's credit balance, owed on the next invoice
 * (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts; docs.stripe.com/billing/customer/balance).
 * We never let Stripe do that: an invoice below the minimum is never sent; its amount is carried
 * to the office's next invoice as a line of its own, so every invoice Stripe has is due exactly
 * its total.
 */

/**
 * The minimums Stripe's currencies page lists, in minor units as the API takes them (HUF is a
 * two-decimal currency in Stripe's API: 175.00 Ft is 17,500). Any other currency's minimum is
 * "$0.50 US or equivalent", a conversion we cannot make: see `minimumCharge`.
 */
export const stripeMinimumCharges: Readonly<Record<string, number>> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50, gbp: 30, hkd: 400,
  huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50, pln: 200, ron: 200, sek: 300, sgd: 50, thb: 1000,
};

/** A currency's minimum charge in minor units; 0 for a currency outside Stripe's table (no minimum applied). */
export function minimumCharge(currency: string): number {
  return stripeMinimumCharges[currency.toLowerCase()] ?? 0;
}

/**
 * What a finalized invoice becomes (§8.9):
 * - `zero`: a total of 0, recorded as paid, never sent (§8.1);
 * - `collect`: at or above the minimum: open, sent to Stripe, which collects it;
 * - `carry`: above 0 and below the minimum, with a next invoice of the office in the same
 *   currency: recorded `paid` (stripeState `carried`), never sent, its total a line on that invoice;
 * - `write_off`: above 0 and below the minimum with no next invoice to carry to (the office's last
 *   invoice, a cancellation, or the next cycle bills in another currency): `void` (stripeState
 *   `written_off`), never sent.
 */
export type Settlement = "zero" | "collect" | "carry" | "write_off";

export function settlement(total: number, currency: string, canCarry: boolean): Settlement {
  if (total === 0) return "zero";
  if (total >= minimumCharge(currency)) return "collect";
  return canCarry ? "carry" : "write_off";
}

/**
 * A run of consecutive invoices of one office in one currency, each with its own amount, settled
 * in order: each one's total is its own amount plus what the one before carried to it. The last
 * carries only when `lastCanCarry` (a draft follows it).
 */
export function settleRun(amounts: readonly number[], currency: string, lastCanCarry: boolean): { total: number; carriedIn: number; settlement: Settlement }[] {
  let carry = 0;
  return amounts.map((own, i) => {
    const total = own + carry;
    const s = settlement(total, currency, i < amounts.length - 1 || lastCanCarry);
    const out = { total, carriedIn: carry, settlement: s };
    carry = s === "carry" ? total : 0;
    return out;
  });
}

/** The minimum as a SQL CASE over a currency column (`minimumChargeCase("pv.currency")`), 0 outside the table. */
export function minimumChargeCase(column: string): string {
  if (!/^[a-z_.]+$/.test(column)) throw new Error("a column name");
  const whens = Object.entries(stripeMinimumCharges).map(([c, m]) => `WHEN '${c}' THEN ${m}`);
  return `(CASE ${column} ${whens.join(" ")} ELSE 0 END)`;
}
