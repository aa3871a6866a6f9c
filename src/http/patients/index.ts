import type { App } from "../context";
import * as patientBilling from "./patient-billing";
import * as reportEvent from "./report-event";

export function registerPatients(app: App) {
  reportEvent.register(app);
  patientBilling.register(app);
}
