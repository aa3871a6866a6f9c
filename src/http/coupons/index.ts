import type { App } from "../context";
import * as archiveCoupon from "./archive-coupon";
import * as createCoupon from "./create-coupon";
import * as listCoupons from "./list-coupons";

export function registerCoupons(app: App) {
  createCoupon.register(app);
  listCoupons.register(app);
  archiveCoupon.register(app);
}
