import type { App } from "../context";
import * as officeAnalytics from "./office-analytics";
import * as platformAnalytics from "./platform-analytics";

export function registerAnalytics(app: App) {
  platformAnalytics.register(app);
  officeAnalytics.register(app);
}
