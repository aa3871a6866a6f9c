import type { Env } from "../env";
import { ApiError } from "../errors";
import { PLATFORM_CHAIN } from "./audit-chain";
import * as clock from "../clock";

/**
 * Flood control (Cloudflare's Workers Rate Limiting binding, `[[ratelimits]]` in wrangler.toml):
 * refused and unauthenticated traffic is limited per client address (REFUSED_RATE_LIMITER), and
 * authenticated traffic per token (TOKEN_RATE_LIMITER). Over the limit: 429 problem+json with
 * Retry-After. Counts are per Cloudflare location and approximate (docs/security.md).
 */
export type RateLimitBinding = { limit(options: { key: string }): Promise<{ success: boolean }> };

/** Seconds until a limited client may try again: the longest window of the two limiters (wrangler.toml). */
export const RATE_LIMIT_RETRY_AFTER_S = 60;

/**
 * What flood control needs of a request, structurally (Hono's context satisfies it): the
 * security layer does not import the HTTP layer's context type.
 */
export type RefusalRequest = {
  env: Pick<Env, "PLATFORM_AUDIT" | "REFUSED_RATE_LIMITER" | "TOKEN_RATE_LIMITER">;
  var: { requestId: string };
  req: { header(name: string): string | undefined };
  executionCtx: { waitUntil(promise: Promise<unknown>): void };
};

/** The caller's address as Cloudflare's edge saw it (never a header the client sets). */
export const clientAddress = (c: RefusalRequest) => c.req.header("cf-connecting-ip") ?? "unknown";

function limited(): ApiError {
  return new ApiError("RATE_LIMITED", "Too many requests; retry after the time in Retry-After.", { headers: { "Retry-After": String(RATE_LIMIT_RETRY_AFTER_S) } });
}

/**
 * Addresses this isolate has seen over their budget, and until when it answers them 429 without
 * asking the limiter again (a flood's later refusals cost no binding call). Short against the
 * limiter's 60 s period: an address over its budget stays over for the rest of its window.
 */
const overUntil = new Map<string, number>();
export const OVER_LIMIT_MEMO_MS = 5_000;
const MAX_REMEMBERED_ADDRESSES = 10_000;

/** True when this address is over its budget of refused or unauthenticated requests. */
export async function refusedOverLimit(c: RefusalRequest): Promise<boolean> {
  const address = clientAddress(c);
  const now = clock.now();
  const until = overUntil.get(address);
  if (until !== undefined) {
    if (until > now) return true;
    overUntil.delete(address);
  }
  const { success } = await (c.env.REFUSED_RATE_LIMITER as RateLimitBinding).limit({ key: `addr:${address}` });
  if (!success) {
    if (overUntil.size >= MAX_REMEMBERED_ADDRESSES) overUntil.clear();
    overUntil.set(address, now + OVER_LIMIT_MEMO_MS);
  }
  return !success;
}

/** Throws 429 when this token is over its budget. `limitKey` is made of the token's SHA-256, never the token (jwt.ts, VerifiedTokens). */
export async function limitToken(c: RefusalRequest, limitKey: string): Promise<void> {
  const { success } = await (c.env.TOKEN_RATE_LIMITER as RateLimitBinding).limit({ key: limitKey });
  if (!success) throw limited();
}

/** What the platform chain's writer aggregates: one entry per source, action, reason and window. */
export type Refusal = { source: string; action: string; outcome: "denied" | "failed"; reason: string; route: string | null; requestId: string };
/** Refusals counted together, with their first route families and request ids. */
export type RefusalCount = Omit<Refusal, "route" | "requestId"> & { count: number; routes: string[]; requestIds: string[] };

/** Kept per aggregate: the first route families and request ids (the rest is only counted). */
export const MAX_SAMPLES = 10;
/** Adds one refusal to a count (the first samples kept). */
export function countRefusal(into: RefusalCount | undefined, r: Refusal): RefusalCount {
  const c = into ?? { source: r.source, action: r.action, outcome: r.outcome, reason: r.reason, count: 0, routes: [], requestIds: [] };
  c.count++;
  if (r.route && !c.routes.includes(r.route) && c.routes.length < MAX_SAMPLES) c.routes.push(r.route);
  if (c.requestIds.length < MAX_SAMPLES) c.requestIds.push(r.requestId);
  return c;
}

/**
 * The refusals of this isolate waiting for their hand-off, counted per source, action, outcome
 * and reason: one batch at a time, handed to the platform writer in one call HANDOFF_DELAY_MS
 * after its first refusal, from that request's waitUntil (after its response). A flood of N
 * refusals costs the writer a few calls, not N. Only plain counts are shared between requests.
 */
let batch: Map<string, RefusalCount> | null = null;
export const HANDOFF_DELAY_MS = 200;
/** Distinct aggregates per batch; past it, the next refusal opens a new batch. */
const MAX_BATCH_KEYS = 256;

function handOver(c: RefusalRequest, r: Refusal) {
  const key = JSON.stringify([r.source, r.action, r.outcome, r.reason]);
  if (batch && (batch.has(key) || batch.size < MAX_BATCH_KEYS)) {
    batch.set(key, countRefusal(batch.get(key), r));
    return;
  }
  const mine = new Map([[key, countRefusal(undefined, r)]]);
  batch = mine;
  const stub = c.env.PLATFORM_AUDIT.get(c.env.PLATFORM_AUDIT.idFromName(PLATFORM_CHAIN));
  const requestIds = () => [...mine.values()].flatMap((v) => v.requestIds).slice(0, MAX_SAMPLES);
  const flush = async () => {
    await new Promise((resolve) => setTimeout(resolve, HANDOFF_DELAY_MS));
    if (batch === mine) batch = null;
    try {
      const res = await stub.refused([...mine.values()]);
      if (!res.ok) console.error(JSON.stringify({ level: "error", msg: "refusals not recorded", code: res.error.code, requestIds: requestIds() }));
    } catch {
      console.error(JSON.stringify({ level: "error", msg: "refusals not recorded", requestIds: requestIds() }));
    }
  };
  c.executionCtx.waitUntil(flush());
}

/**
 * Records a refusal off the request path: counted in this isolate's batch, handed to the platform
 * chain's writer after the response (one call per batch), which counts it in its window (its own
 * storage) and appends one aggregated entry per source, action and reason when the window ends.
 * Then, if the address is over its budget, 429.
 */
export async function refuse(c: RefusalRequest, refusal: Omit<Refusal, "source" | "requestId">, error: ApiError): Promise<never> {
  const over = await refusedOverLimit(c);
  handOver(c, { ...refusal, reason: over ? "rate limited" : refusal.reason, source: clientAddress(c), requestId: c.var.requestId });
  throw over ? limited() : error;
}
