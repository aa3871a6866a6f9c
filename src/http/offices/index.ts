import type { App } from "../context";
import * as createOffice from "./create-office";
import * as getOffice from "./get-office";

export function registerOffices(app: App) {
  createOffice.register(app);
  getOffice.register(app);
}
