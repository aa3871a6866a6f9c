import type { App } from "../context";
import * as rotateDataKeys from "./rotate-data-keys";
import * as runInvoicing from "./run-invoicing";
import * as runReconciliation from "./run-reconciliation";
import * as webhookEvents from "./webhook-events";

export function registerAdmin(app: App) {
  rotateDataKeys.register(app);
  runInvoicing.register(app);
  runReconciliation.register(app);
  webhookEvents.register(app);
}
