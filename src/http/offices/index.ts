import type { App } from "../context";
import * as addCharge from "./add-charge";
import * as billingPortal from "./billing-portal";
import * as changeSubscription from "./change-subscription";
import * as createOffice from "./create-office";
import * as getOffice from "./get-office";
import * as paymentSetup from "./payment-setup";
import * as applyDiscount from "./apply-discount";
import * as removeDiscount from "./remove-discount";
import * as listOffices from "./list-offices";
import * as updateOffice from "./update-office";

export function registerOffices(app: App) {
  createOffice.register(app);
  addCharge.register(app);
  changeSubscription.register(app);
  listOffices.register(app);
  getOffice.register(app);
  applyDiscount.register(app);
  removeDiscount.register(app);
  updateOffice.register(app);
  billingPortal.register(app);
  paymentSetup.register(app);
}
