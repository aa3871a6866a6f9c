import type { App } from "../context";
import * as rotateDataKeys from "./rotate-data-keys";
import * as runInvoicing from "./run-invoicing";

export function registerAdmin(app: App) {
  rotateDataKeys.register(app);
  runInvoicing.register(app);
}
