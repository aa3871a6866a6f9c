import type { App } from "../context";
import * as exportDataset from "./export-dataset";

export function registerExports(app: App) {
  exportDataset.register(app);
}
