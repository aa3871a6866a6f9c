// Customer credit balance at finalize, and Stripe's minimum charge amounts.
//
// Stripe (docs.stripe.com/billing/customer/balance; the invoice object's `amount_due`,
// `starting_balance`, `ending_balance`): the customer's balance — positive, owed to us (a debit);
// negative, a credit — is applied to the next invoice finalized: `starting_balance` is the balance
// before, `amount_due` = total + starting balance (never below 0; a credit left over stays on the
// customer), `ending_balance` the balance after. "If the amount due for the invoice is less than
// Stripe's minimum allowed charge per currency, the invoice is automatically marked paid, and we
// add the amount due to the customer's credit balance which is applied to the next invoice"
// (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). Such an invoice then reads
// `amount_due: 0`, `status: paid`, `ending_balance` = the amount moved. The customer's balance
// transactions (`invoice_too_small`, `applied_to_invoice`) are not emulated as objects.

/** Stripe's table, minor units as the API takes them; other currencies: no minimum emulated. */
export const MINIMUM_CHARGE = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50, gbp: 30, hkd: 400,
  huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50, pln: 200, ron: 200, sek: 300, sgd: 50, thb: 1000,
};

export const minimumCharge = (currency) => MINIMUM_CHARGE[String(currency).toLowerCase()] ?? 0;

/**
 * Applies the customer's balance to an invoice being finalized (its totals just computed) and
 * moves an amount below the minimum charge to the balance. Returns true when the invoice was too
 * small to charge (it is then due 0 and marked paid by the caller, as a zero invoice is).
 */
export function applyBalanceAtFinalize(inv, customer) {
  const starting = customer?.balance ?? 0;
  const due = inv.total + starting;
  inv.starting_balance = starting;
  let tooSmall = false;
  if (due <= 0) {
    inv.amount_due = 0;
    inv.ending_balance = due;
  } else if (due < minimumCharge(inv.currency)) {
    tooSmall = true;
    inv.amount_due = 0;
    inv.ending_balance = due;
  } else {
    inv.amount_due = due;
    inv.ending_balance = 0;
  }
  inv.amount_remaining = Math.max(0, inv.amount_due - inv.amount_paid);
  if (customer) customer.balance = inv.ending_balance;
  return tooSmall;
}
