import { env } from "cloudflare:test";
import { and, eq, like } from "drizzle-orm";
import { auditLog } from "../../src/db/audit";
import { testDb } from "./seed";

const platform = () => env.PLATFORM_AUDIT.get(env.PLATFORM_AUDIT.idFromName("platform"));

/**
 * The aggregated platform entry that counts the refused request `requestId`. Refusals reach the
 * platform writer off the request path and are written when their window ends: this writes every
 * pending window now (the clock is an input: a time past the window) until the entry is there.
 */
export async function refusalEntry(requestId: string, action = "auth.authenticate") {
  for (let attempt = 0; attempt < 400; attempt++) {
    const flushed = await platform().flushRefusals(Date.now() + 120_000);
    if (!flushed.ok) throw new Error(`refusals not written: ${flushed.error.code}`);
    const [entry] = await testDb()
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.chain, "platform"), eq(auditLog.action, action), like(auditLog.details, `%"${requestId}"%`)));
    if (entry) return entry as typeof entry & { details: { aggregated: true; source: string; reason: string; count: number; requestIds: string[]; routes: string[] } };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the refusal of ${requestId} was never recorded`);
}
