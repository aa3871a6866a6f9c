// Coupons (`/v1/coupons`: create, retrieve) and an invoice's discounts (`discounts[][coupon]` on
// create): Stripe's rules as documented for the pinned API version —
// docs.stripe.com/api/coupons/create: "A coupon has either a percent_off or an amount_off and
// currency. If you set an amount_off, that amount will be subtracted from any invoice's subtotal"
// (never below 0); `id` is ours to choose (a taken one: `resource_already_exists`); `max_redemptions`
// bounds how often it is redeemed; `name` (at most 40 characters) is what invoices show; a coupon's
// amount, currency and duration never change (CouponUpdateParams).
//
// On an invoice the discount is spread over its discountable lines (a negative line is not
// discountable: InvoiceAddLinesParams.Line.discountable, "Defaults to false for prorations or
// negative line items") as each line's `discount_amounts`; the invoice's `total_discount_amounts`
// is their sum, `total_excluding_tax` = subtotal − discounts, and a line's tax is computed on its
// amount less its discount (`taxes[].taxable_amount`, tax.mjs). How Stripe rounds the split of an
// amount off across several lines is not documented: the emulator gives each line its proportional
// share rounded down and the remaining minor units to the largest remainders (first line first on
// ties). Our code never depends on the split (Stripe's tax is read back, payment-plan §11.6); tests
// that assert a tax figure use splits that are exact.
import { HASH, LEAF, NOT, clone, invalid, invalidParam, mergeMetadata, missing, newId, notFound, toInt } from "./common.mjs";

/** CouponCreateParams of the pinned SDK. */
const CREATE = {
  amount_off: LEAF,
  applies_to: NOT,
  currency: LEAF,
  currency_options: NOT,
  duration: LEAF,
  duration_in_months: LEAF,
  expand: [LEAF],
  id: LEAF,
  max_redemptions: LEAF,
  metadata: HASH,
  name: LEAF,
  percent_off: LEAF,
  redeem_by: LEAF,
};

export function registerCoupons(app) {
  const { route, state, clock } = app;

  route("POST", "/v1/coupons", CREATE, (p) => {
    const amountOff = toInt(p.amount_off, "amount_off");
    const percentOff = p.percent_off === undefined || p.percent_off === "" ? undefined : Number(p.percent_off);
    if (amountOff === undefined && percentOff === undefined) throw invalidParam("You must pass either `percent_off` or `amount_off`.", "amount_off");
    if (amountOff !== undefined && percentOff !== undefined) throw invalidParam("You may only specify one of these parameters: amount_off, percent_off.", "amount_off");
    if (amountOff !== undefined) {
      if (amountOff < 1) throw invalidParam("This value must be greater than or equal to 1.", "amount_off");
      if (!p.currency) throw missing("currency");
    }
    if (percentOff !== undefined && !(percentOff > 0 && percentOff <= 100)) throw invalidParam("Invalid percent_off: must be greater than 0 and at most 100.", "percent_off");
    const duration = p.duration ?? "once";
    if (!["once", "repeating", "forever"].includes(duration)) throw invalidParam("Invalid duration: must be one of forever, once, or repeating", "duration");
    const months = toInt(p.duration_in_months, "duration_in_months");
    if (duration === "repeating" && months === undefined) throw missing("duration_in_months");
    const maxRedemptions = toInt(p.max_redemptions, "max_redemptions");
    if (maxRedemptions !== undefined && maxRedemptions < 1) throw invalidParam("This value must be greater than or equal to 1.", "max_redemptions");
    if (p.name !== undefined && String(p.name).length > 40) throw invalidParam("Invalid string: must be at most 40 characters", "name");
    const id = p.id ? String(p.id) : newId("").slice(1, 9).toUpperCase();
    if (state.coupons.has(id)) throw invalid("Coupon already exists.", { code: "resource_already_exists", param: "id" });
    const coupon = {
      id,
      object: "coupon",
      amount_off: amountOff ?? null,
      created: clock.now(),
      currency: amountOff !== undefined ? String(p.currency).toLowerCase() : null,
      duration,
      duration_in_months: duration === "repeating" ? months : null,
      livemode: false,
      max_redemptions: maxRedemptions ?? null,
      metadata: mergeMetadata({}, p.metadata),
      name: p.name ? String(p.name) : null,
      percent_off: percentOff ?? null,
      redeem_by: toInt(p.redeem_by, "redeem_by") ?? null,
      times_redeemed: 0,
      valid: true,
    };
    state.coupons.set(id, coupon);
    return clone(coupon);
  });
  route("GET", "/v1/coupons/:id", { expand: [LEAF] }, (_p, { id }) => {
    const coupon = state.coupons.get(id);
    if (!coupon) throw notFound("coupon", id, "coupon");
    return clone(coupon);
  });

  /** `discounts` of an invoice create: each a coupon (redeemed now) made into a discount of the invoice; the discounts' ids. */
  function redeem(list, inv) {
    if (list === undefined || list === "") return [];
    const items = Array.isArray(list) ? list : [list];
    return items.map((d, i) => {
      const param = `discounts[${i}][coupon]`;
      if (!d || typeof d !== "object" || !d.coupon) throw missing(param);
      const coupon = state.coupons.get(String(d.coupon));
      if (!coupon) throw invalidParam(`No such coupon: '${d.coupon}'`, param, { code: "resource_missing" });
      if (!coupon.valid || (coupon.max_redemptions !== null && coupon.times_redeemed >= coupon.max_redemptions) || (coupon.redeem_by !== null && coupon.redeem_by < clock.now())) {
        throw invalidParam(`Coupon ${coupon.id} is no longer valid.`, param, { code: "coupon_expired" });
      }
      if (coupon.currency !== null && coupon.currency !== inv.currency) {
        throw invalidParam(`The coupon's currency (${coupon.currency}) must match the invoice's currency (${inv.currency}).`, param);
      }
      coupon.times_redeemed += 1;
      if (coupon.max_redemptions !== null && coupon.times_redeemed >= coupon.max_redemptions) coupon.valid = false;
      const discount = { id: newId("di"), object: "discount", checkout_session: null, customer: inv.customer, customer_account: null, end: null, invoice: inv.id, invoice_item: null, promotion_code: null, source: { coupon: coupon.id, type: "coupon" }, start: clock.now(), subscription: null, subscription_item: null };
      state.discounts.set(discount.id, discount);
      return discount.id;
    });
  }

  /**
   * Each line's `discount_amounts` from the invoice's discounts (see the head of this file); the
   * invoice's `total_discount_amounts`. Percent off: each discountable line's amount × p,
   * rounded half away from zero per line.
   */
  function applyDiscounts(inv) {
    const lines = inv.lines.data;
    for (const l of lines) l.discount_amounts = [];
    inv.total_discount_amounts = [];
    for (const discountId of inv.discounts) {
      const coupon = state.coupons.get(state.discounts.get(discountId)?.source.coupon);
      if (!coupon) continue;
      const eligible = lines.filter((l) => l.discountable && l.amount > 0);
      const remaining = (l) => l.amount - l.discount_amounts.reduce((a, d) => a + d.amount, 0);
      const base = eligible.reduce((a, l) => a + remaining(l), 0);
      const shares = new Map();
      if (coupon.percent_off !== null) {
        for (const l of eligible) shares.set(l, Math.round((remaining(l) * coupon.percent_off) / 100));
      } else if (base > 0) {
        const off = Math.min(coupon.amount_off, base);
        const exact = eligible.map((l) => ({ l, floor: Math.floor((off * remaining(l)) / base), rest: (off * remaining(l)) % base }));
        let left = off - exact.reduce((a, e) => a + e.floor, 0);
        for (const e of [...exact].sort((a, b) => b.rest - a.rest)) {
          shares.set(e.l, e.floor + (left > 0 ? 1 : 0));
          if (left > 0) left -= 1;
        }
      }
      let total = 0;
      for (const l of lines) {
        const amount = shares.get(l) ?? 0;
        l.discount_amounts.push({ amount, discount: discountId });
        total += amount;
      }
      inv.total_discount_amounts.push({ amount: total, discount: discountId });
    }
  }

  return { redeem, applyDiscounts };
}
