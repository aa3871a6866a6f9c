import { desc, eq } from "drizzle-orm";
import type { Database } from "../../db/client";
import { plans, planVersions } from "../../db/plans";
import { ApiError } from "../problem";
import { planView } from "./schemas";

/** The statements reading a plan and its versions (for one batch). */
export function planReads(db: Database, planId: string) {
  return [
    db.select().from(plans).where(eq(plans.id, planId)),
    db.select().from(planVersions).where(eq(planVersions.planId, planId)).orderBy(desc(planVersions.version)),
  ] as const;
}

export function planFrom(rows: readonly [(typeof plans.$inferSelect)[], (typeof planVersions.$inferSelect)[]]) {
  const [plan] = rows[0];
  if (!plan) throw new ApiError("NOT_FOUND", "No such plan.");
  return planView(plan, rows[1]);
}
