import type { BillingAddress } from "../db/offices";
import type { GuardContext } from "./guard";

/** The office's address as Stripe's customer address. */
export function stripeAddress(a: BillingAddress) {
  return { line1: a.line1, ...(a.line2 ? { line2: a.line2 } : {}), city: a.city, ...(a.state ? { state: a.state } : {}), postal_code: a.postalCode, country: a.country };
}

/**
 * The office's own recorded address may cross in the customer's address fields, exactly as stored
 * (docs/payment-plan.md §4.2; docs/compliance): there, and only there, it may read as a street
 * address and a ZIP code; it is scanned for every other kind (an SSN in a suite number is found).
 */
export function officeAddressAllowance(address: BillingAddress | null, allowedValues?: Record<string, string>): Pick<GuardContext, "allowedValues" | "officeAddress"> {
  const base = allowedValues ? { allowedValues } : {};
  if (!address) return base;
  return { ...base, officeAddress: Object.fromEntries(Object.entries(stripeAddress(address)).map(([k, v]) => [`address[${k}]`, v])) };
}
