import { z } from "@hono/zod-openapi";
import { isStripeCurrency } from "../../billing/currencies";
import { couponDurations, type coupons } from "../../db/discounts";

export const CouponCodeSchema = z
  .string()
  .regex(/^[A-Z0-9_-]{3,32}$/, "must be 3–32 characters: A–Z, 0–9, - and _")
  .openapi({ example: "WELCOME15" });

export const CreateCouponSchema = z
  .object({
    code: CouponCodeSchema,
    percentOff: z.number().int().min(1).max(100).optional().openapi({ description: "A whole percentage off; or `amountOff` with `currency`.", example: 15 }),
    amountOff: z.number().int().min(1).max(100_000_000).optional().openapi({ description: "A fixed amount off, in minor units of `currency`.", example: 10000 }),
    currency: z
      .string()
      .refine(isStripeCurrency, "must be a currency Stripe supports, as a lowercase ISO 4217 code (e.g. usd)")
      .optional()
      .openapi({ description: "The currency of `amountOff` (lowercase ISO 4217).", example: "usd" }),
    duration: z.enum(couponDurations).openapi({ description: "`once`: one invoice; `repeating`: the first `durationCycles` invoices; `forever`." }),
    durationCycles: z.number().int().min(1).max(36).optional(),
    redeemBy: z.string().datetime({ offset: true }).optional().openapi({ description: "No office may take the coupon after this instant." }),
    maxRedemptions: z.number().int().min(1).max(1_000_000).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.percentOff === undefined) === (c.amountOff === undefined)) ctx.addIssue({ code: "custom", path: ["percentOff"], message: "give either percentOff or amountOff" });
    if (c.amountOff !== undefined && c.currency === undefined) ctx.addIssue({ code: "custom", path: ["currency"], message: "an amount off needs its currency" });
    if (c.percentOff !== undefined && c.currency !== undefined) ctx.addIssue({ code: "custom", path: ["currency"], message: "a percentage has no currency" });
    if ((c.duration === "repeating") !== (c.durationCycles !== undefined)) ctx.addIssue({ code: "custom", path: ["durationCycles"], message: "durationCycles goes with (and only with) a repeating duration" });
  })
  .openapi("CreateCouponRequest", { example: { code: "WELCOME15", percentOff: 15, duration: "repeating", durationCycles: 3, maxRedemptions: 100 } });

export const CouponSchema = z
  .object({
    id: z.string(),
    code: z.string(),
    percentOff: z.number().int().nullable(),
    amountOff: z.number().int().nullable(),
    currency: z.string().nullable(),
    duration: z.enum(couponDurations),
    durationCycles: z.number().int().nullable(),
    redeemBy: z.string().datetime().nullable(),
    maxRedemptions: z.number().int().nullable(),
    timesRedeemed: z.number().int(),
    archivedAt: z.string().datetime().nullable(),
    createdAt: z.string().datetime(),
  })
  .openapi("Coupon");

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function couponView(c: typeof coupons.$inferSelect): z.infer<typeof CouponSchema> {
  return {
    id: c.id,
    code: c.code,
    percentOff: c.percentOff,
    amountOff: c.amountOff,
    currency: c.currency,
    duration: c.duration,
    durationCycles: c.durationCycles,
    redeemBy: iso(c.redeemBy),
    maxRedemptions: c.maxRedemptions,
    timesRedeemed: c.timesRedeemed,
    archivedAt: iso(c.archivedAt),
    createdAt: iso(c.createdAt)!,
  };
}
