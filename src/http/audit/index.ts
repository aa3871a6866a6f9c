import type { App } from "../context";
import * as listAudit from "./list-audit";
import * as verifyAudit from "./verify-audit";

export function registerAudit(app: App) {
  // /v1/audit/verify before /v1/audit so neither shadows the other.
  verifyAudit.register(app);
  listAudit.register(app);
}
