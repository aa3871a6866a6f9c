import type { App } from "../context";
import * as createPlan from "./create-plan";
import * as createVersion from "./create-version";
import * as getPlan from "./get-plan";
import * as listPlans from "./list-plans";
import * as retirePlan from "./retire-plan";

export function registerPlans(app: App) {
  createPlan.register(app);
  listPlans.register(app);
  getPlan.register(app);
  createVersion.register(app);
  retirePlan.register(app);
}
