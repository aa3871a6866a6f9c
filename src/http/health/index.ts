import type { App } from "../context";
import * as getHealth from "./get-health";

export function registerHealth(app: App) {
  getHealth.register(app);
}
