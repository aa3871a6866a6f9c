import type { App } from "../context";
import * as getOffice from "./get-office";

export function registerOffices(app: App) {
  getOffice.register(app);
}
