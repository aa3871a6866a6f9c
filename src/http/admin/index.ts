import type { App } from "../context";
import * as clinicalEvents from "./clinical-events";
import * as rotateDataIndex from "./rotate-data-index";
import * as rotateDataKeys from "./rotate-data-keys";
import * as rotatePatientKeys from "./rotate-patient-keys";
import * as runInvoicing from "./run-invoicing";
import * as runReconciliation from "./run-reconciliation";
import * as webhookEvents from "./webhook-events";

export function registerAdmin(app: App) {
  clinicalEvents.register(app);
  rotateDataIndex.register(app);
  rotateDataKeys.register(app);
  rotatePatientKeys.register(app);
  runInvoicing.register(app);
  runReconciliation.register(app);
  webhookEvents.register(app);
}
