import type { App } from "../context";
import * as reportEvent from "./report-event";

export function registerPatients(app: App) {
  reportEvent.register(app);
}
