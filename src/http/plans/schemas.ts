import { minimumCharge } from "../../billing/minimum";
import { z } from "@hono/zod-openapi";
import { billableCurrencies, isStripeCurrency, isTwoDecimalCurrency } from "../../billing/currencies";
import { validateTiers } from "../../billing/pricing";
import type { planVersions, plans } from "../../db/plans";

export const PlanIdSchema = z
  .string()
  .regex(/^plan_[0-9a-f]{32}$/, "must be a plan id (plan_ followed by 32 hex digits)")
  .openapi({ example: "plan_0c1d2e3f405162738495a6b7c8d9e0f1" });

const money = (description: string, example: number) => z.number().int().min(0).max(100_000_000).openapi({ description, example });

export const TierSchema = z
  .object({
    upTo: z.number().int().min(1).nullable().openapi({ description: "Last patient rank of the tier (inclusive); null for the last, unbounded tier.", example: 50 }),
    unitAmount: money("Price per patient in this tier, minor units.", 800),
  })
  .strict();

export const PlanVersionInputSchema = z
  .object({
    currency: z
      .string()
      .refine(isStripeCurrency, "must be a currency Stripe supports, as a lowercase ISO 4217 code (e.g. usd)")
      .refine(
        (c) => !isStripeCurrency(c) || isTwoDecimalCurrency(c),
        "is a currency Stripe charges in whole units (zero-decimal, or ISK); this service bills two-decimal currencies only (docs/payment-plan.md §1.1)",
      )
      .openapi({
        description: "A two-decimal currency Stripe supports for payments (lowercase ISO 4217), fixed per plan version. Zero-decimal currencies (jpy, krw, …) and isk are refused: every amount is in 1/100 of the currency's unit.",
        enum: [...billableCurrencies],
        example: "usd",
      }),
    baseFee: money("Monthly base fee, minor units (may be 0).", 4900),
    tiers: z
      .array(TierSchema)
      .min(1)
      .max(20)
      .superRefine((tiers, ctx) => {
        try {
          validateTiers(tiers);
        } catch (err) {
          ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : "invalid tiers" });
        }
      })
      .openapi({ example: [{ upTo: 50, unitAmount: 800 }, { upTo: 200, unitAmount: 600 }, { upTo: null, unitAmount: 400 }] }),
    includedPatients: z.number().int().min(0).max(1_000_000).default(0).openapi({ description: "Free allowance: the first N patient ranks cost nothing." }),
    setupFee: money("One-off fee invoiced at onboarding, minor units (0: none).", 25000).default(0),
    trialDays: z.number().int().min(0).max(365).default(0),
    graceDays: z.number().int().min(0).max(90).default(14).openapi({ description: "Days a failed payment may stay unpaid before the office is suspended." }),
  })
  .strict()
  .superRefine((v, ctx) => {
    // The setup invoice stands alone (§6.6): below Stripe's minimum charge it could never be collected (§8.9).
    const minimum = minimumCharge(v.currency);
    if (v.setupFee > 0 && v.setupFee < minimum) {
      ctx.addIssue({ code: "custom", path: ["setupFee"], message: `must be 0 or at least Stripe's minimum charge in ${v.currency} (${minimum} minor units)` });
    }
  })
  .openapi("PlanVersionInput");

export const PlanVersionSchema = z
  .object({
    id: z.string(),
    version: z.number().int(),
    currency: z.string(),
    baseFee: z.number().int(),
    tiers: z.array(TierSchema),
    includedPatients: z.number().int(),
    setupFee: z.number().int(),
    trialDays: z.number().int(),
    graceDays: z.number().int(),
    createdAt: z.string().datetime(),
  })
  .openapi("PlanVersion");

export const PlanSchema = z
  .object({
    id: z.string(),
    code: z.string(),
    name: z.string(),
    status: z.enum(["active", "retired"]),
    createdAt: z.string().datetime(),
    versions: z.array(PlanVersionSchema).openapi({ description: "Newest first." }),
  })
  .openapi("Plan");

export function versionView(v: typeof planVersions.$inferSelect): z.infer<typeof PlanVersionSchema> {
  return {
    id: v.id,
    version: v.version,
    currency: v.currency,
    baseFee: v.baseFee,
    tiers: v.tiers,
    includedPatients: v.includedPatients,
    setupFee: v.setupFee,
    trialDays: v.trialDays,
    graceDays: v.graceDays,
    createdAt: new Date(v.createdAt).toISOString(),
  };
}

export function planView(p: typeof plans.$inferSelect, versions: (typeof planVersions.$inferSelect)[]): z.infer<typeof PlanSchema> {
  return {
    id: p.id,
    code: p.code,
    name: p.name,
    status: p.status,
    createdAt: new Date(p.createdAt).toISOString(),
    versions: versions.sort((a, b) => b.version - a.version).map(versionView),
  };
}
