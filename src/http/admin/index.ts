import type { App } from "../context";
import * as rotateDataKeys from "./rotate-data-keys";

export function registerAdmin(app: App) {
  rotateDataKeys.register(app);
}
