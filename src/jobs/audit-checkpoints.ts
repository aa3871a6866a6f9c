import { gte, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { auditLog } from "../db/audit";
import type { Env } from "../env";
import { unwrap } from "../office/result";
import { PLATFORM_CHAIN } from "../security/audit-chain";

/** Chains written within this window before a run get a checkpoint (two runs' worth: a missed run is covered). */
export const CHECKPOINT_LOOKBACK_MS = 2 * 86_400_000;

/**
 * The daily audit checkpoint: the platform chain's and every office chain written lately, each
 * logged by its writer (head, entries written, time, MAC under the current AUDIT_KEY). A chain
 * left untouched keeps its last checkpoint. Logs are kept outside the database: a copy proves a
 * later truncation of the chain.
 */
export async function checkpointAuditChains(db: Database, env: Pick<Env, "OFFICE_BILLING" | "PLATFORM_AUDIT">, at: number, concurrency = 10) {
  const written = await db
    .selectDistinct({ chain: auditLog.chain })
    .from(auditLog)
    .where(gte(auditLog.at, at - CHECKPOINT_LOOKBACK_MS))
    .orderBy(sql`1`);
  const offices = written.map((r) => r.chain).filter((c) => c !== PLATFORM_CHAIN);
  let checkpoints = 0;
  let failed = 0;
  const platform = unwrap(await env.PLATFORM_AUDIT.get(env.PLATFORM_AUDIT.idFromName(PLATFORM_CHAIN)).checkpoint());
  if (platform) checkpoints++;
  const queue = [...offices];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      for (let officeId = queue.shift(); officeId; officeId = queue.shift()) {
        const r = await env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId)).auditCheckpoint(officeId);
        if (!r.ok) failed++;
        else if (r.value) checkpoints++;
      }
    }),
  );
  return { checkpoints, failed };
}
