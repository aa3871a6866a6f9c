// What TAX_MODE offers offices (docs/payment-plan.md §11.1), and the refusals a tax setting meets
// before anything is written (§11.7): the profile's pure plan throws them before it builds a statement.
import { describe, expect, it } from "vitest";
import { taxModeOffered } from "../../../src/config";
import type { Database } from "../../../src/db/client";
import type { offices } from "../../../src/db/offices";
import { ApiError } from "../../../src/errors";
import { profileStatements } from "../../../src/office/profile";

describe("TAX_MODE", () => {
  it("none offers nothing, manual only our rates, stripe_tax both", () => {
    const offered = (mode: "none" | "manual" | "stripe_tax" | undefined) => [taxModeOffered({ TAX_MODE: mode }, "manual"), taxModeOffered({ TAX_MODE: mode }, "stripe_tax")];
    expect(offered(undefined)).toEqual([false, false]);
    expect(offered("none")).toEqual([false, false]);
    expect(offered("manual")).toEqual([true, false]);
    expect(offered("stripe_tax")).toEqual([true, true]);
  });
});

describe("an office's tax setting refused before any write", () => {
  // Never touched: each case throws before a statement is built.
  const db = undefined as unknown as Database;
  const office = { taxMode: null, taxRateBps: null, taxRateName: null, billingAddress: null } as unknown as typeof offices.$inferSelect;
  const conflict = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      return (err as ApiError).code;
    }
    return "none";
  };

  it("a mode the configuration does not offer: 409", () => {
    expect(conflict(() => profileStatements(db, office, { tax: { mode: "manual", basisPoints: 825, name: "Sales tax" } }, 0, { manual: false, stripe_tax: false }))).toBe("CONFLICT");
    expect(conflict(() => profileStatements(db, office, { tax: { mode: "stripe_tax" } }, 0, { manual: true, stripe_tax: false }))).toBe("CONFLICT");
  });

  it("Stripe Tax without an address, or the address removed under it: 409", () => {
    expect(conflict(() => profileStatements(db, office, { tax: { mode: "stripe_tax" } }, 0, { manual: true, stripe_tax: true }))).toBe("CONFLICT");
    const taxed = { ...office, taxMode: "stripe_tax", billingAddress: { line1: "1 Main St", line2: null, city: "New York", state: "NY", postalCode: "10001", country: "US" } } as typeof offices.$inferSelect;
    expect(conflict(() => profileStatements(db, taxed, { billingAddress: null }, 0, { manual: true, stripe_tax: true }))).toBe("CONFLICT");
  });
});
