import type { App } from "../context";
import * as patientBilling from "./patient-billing";
import * as reportEvent from "./report-event";
import * as reportEvents from "./report-events";

export function registerPatients(app: App) {
  reportEvents.register(app);
  reportEvent.register(app);
  patientBilling.register(app);
}
