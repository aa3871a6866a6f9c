import type { App } from "../context";
import * as reportEvent from "./report-event";
import * as reportEvents from "./report-events";

export function registerPatients(app: App) {
  reportEvents.register(app);
  reportEvent.register(app);
}
