import { loadConfig } from "../config";
import type { Env } from "../env";
import { PLATFORM_CHAIN, type AuditCheckpoint, type ChainAnchor } from "../security/audit-chain";
import { auditKeyring } from "../security/data-keys";
import { MAX_SAMPLES, type RefusalCount } from "../security/refusals";
import { ChainWriter, type AuditInput } from "./chain-writer";
import { failure, ok, type OfficeResult } from "./result";
import { SerializedObject } from "./serialized-object";
import * as clock from "../clock";

/** Refusals are counted per window of this length and written as one entry per source, action and reason. */
export const REFUSAL_WINDOW_MS = 60_000;

type WindowRow = {
  window_start: number;
  source: string;
  action: string;
  reason: string;
  outcome: "denied" | "failed";
  count: number;
  first_at: number;
  last_at: number;
  request_ids: string;
  routes: string;
};

/**
 * The single writer of the platform audit chain: events not tied to an office the caller may
 * see (failed authentication, access denied to another office's resource, platform-wide reads).
 * One instance, addressed by name `platform`.
 *
 * Refused requests (bad or missing tokens, unsigned webhooks) do not append one entry each on the
 * request path: `refused` only counts them in this object's storage (no database round trip, not
 * queued behind appends), and the alarm at the end of each window appends one entry per source,
 * action and reason with the count. A flood of refusals costs the chain one batch a minute.
 */
export class PlatformAudit extends SerializedObject {
  readonly #chain: ChainWriter;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#chain = new ChainWriter(ctx.storage, PLATFORM_CHAIN, () => auditKeyring(loadConfig(this.env)));
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS refusal_windows (window_start INTEGER NOT NULL, source TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL, outcome TEXT NOT NULL, count INTEGER NOT NULL, first_at INTEGER NOT NULL, last_at INTEGER NOT NULL, request_ids TEXT NOT NULL, routes TEXT NOT NULL, PRIMARY KEY (window_start, source, action, reason))",
    );
  }

  protected before(): void {}

  async append(entries: AuditInput[]): Promise<OfficeResult<{ seq: number }>> {
    return this.exclusive(PLATFORM_CHAIN, "audit", async () => ({ seq: (await this.#chain.append(this.db, entries)).seq }));
  }

  /** Adds refusals (already counted by an isolate) to their window (this object's clock); the window's alarm writes it. */
  async refused(counts: RefusalCount[]): Promise<OfficeResult<{ windowStart: number }>> {
    try {
      const at = clock.now();
      const windowStart = Math.floor(at / REFUSAL_WINDOW_MS) * REFUSAL_WINDOW_MS;
      const sql = this.ctx.storage.sql;
      for (const r of counts) {
        const key = [windowStart, r.source, r.action, r.reason] as const;
        const row = sql
          .exec<{ routes: string; request_ids: string }>("SELECT routes, request_ids FROM refusal_windows WHERE window_start = ? AND source = ? AND action = ? AND reason = ?", ...key)
          .toArray()[0];
        if (!row) {
          sql.exec(
            "INSERT INTO refusal_windows (window_start, source, action, reason, outcome, count, first_at, last_at, request_ids, routes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ...key,
            r.outcome,
            r.count,
            at,
            at,
            JSON.stringify(r.requestIds.slice(0, MAX_SAMPLES)),
            JSON.stringify(r.routes.slice(0, MAX_SAMPLES)),
          );
        } else {
          const routes = [...new Set([...(JSON.parse(row.routes) as string[]), ...r.routes])].slice(0, MAX_SAMPLES);
          const ids = [...(JSON.parse(row.request_ids) as string[]), ...r.requestIds].slice(0, MAX_SAMPLES);
          sql.exec(
            "UPDATE refusal_windows SET count = count + ?, last_at = ?, routes = ?, request_ids = ? WHERE window_start = ? AND source = ? AND action = ? AND reason = ?",
            r.count,
            at,
            JSON.stringify(routes),
            JSON.stringify(ids),
            ...key,
          );
        }
      }
      if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(windowStart + REFUSAL_WINDOW_MS);
      return ok({ windowStart });
    } catch (err) {
      return failure(err);
    }
  }

  /**
   * Appends one entry per source, action and reason of every window ended by `now` (one batch),
   * then forgets those windows. The alarm calls it with the current time.
   */
  async flushRefusals(now: number): Promise<OfficeResult<{ entries: number }>> {
    return this.exclusive(PLATFORM_CHAIN, "audit.refusals", async () => {
      const sql = this.ctx.storage.sql;
      const rows = sql.exec<WindowRow>("SELECT * FROM refusal_windows WHERE window_start + ? <= ? ORDER BY window_start, first_at", REFUSAL_WINDOW_MS, now).toArray();
      if (rows.length > 0) {
        await this.#chain.append(
          this.db,
          rows.map((w) => ({
            action: w.action,
            outcome: w.outcome,
            actorSub: "anonymous",
            actorRole: "none",
            officeId: null,
            requestId: (JSON.parse(w.request_ids) as string[])[0] ?? null,
            at: w.first_at,
            details: {
              aggregated: true,
              source: w.source,
              reason: w.reason,
              count: w.count,
              window: { from: new Date(w.window_start).toISOString(), to: new Date(w.window_start + REFUSAL_WINDOW_MS).toISOString() },
              lastAt: new Date(w.last_at).toISOString(),
              routes: JSON.parse(w.routes) as string[],
              requestIds: JSON.parse(w.request_ids) as string[],
            },
          })),
        );
        for (const w of rows) {
          sql.exec("DELETE FROM refusal_windows WHERE window_start = ? AND source = ? AND action = ? AND reason = ?", w.window_start, w.source, w.action, w.reason);
        }
      }
      const next = sql.exec<{ start: number | null }>("SELECT MIN(window_start) AS start FROM refusal_windows").toArray()[0]?.start ?? null;
      if (next !== null) await this.ctx.storage.setAlarm(next + REFUSAL_WINDOW_MS);
      return { entries: rows.length };
    });
  }

  /** Writes the windows that have ended; a failure throws, and the runtime retries the alarm. */
  override async alarm(): Promise<void> {
    const r = await this.flushRefusals(clock.now());
    if (!r.ok) throw new Error(`refusals not written: ${r.error.code}`);
  }

  /** The chain as its writer recorded it: the anchor for verification. */
  async anchor(): Promise<OfficeResult<ChainAnchor>> {
    return ok(this.#chain.anchor());
  }

  /** Logs (and returns) the chain's MAC'd checkpoint. */
  async checkpoint(): Promise<OfficeResult<AuditCheckpoint | null>> {
    return this.exclusive(PLATFORM_CHAIN, "audit.checkpoint", () => this.#chain.checkpoint());
  }

  async head(): Promise<OfficeResult<{ segment: string; seq: number; hash: string } | null>> {
    return ok(this.#chain.head());
  }
}
