import type { Env } from "../env";
import { ApiError } from "../errors";
import { PLATFORM_CHAIN } from "./audit-chain";
import { sha256Hex } from "./crypto";

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

/** True when this address is over its budget of refused or unauthenticated requests. */
export async function refusedOverLimit(c: RefusalRequest): Promise<boolean> {
  const { success } = await (c.env.REFUSED_RATE_LIMITER as RateLimitBinding).limit({ key: `addr:${clientAddress(c)}` });
  return !success;
}

/** Throws 429 when this token is over its budget. The key is the token's SHA-256, never the token. */
export async function limitToken(c: RefusalRequest, token: string): Promise<void> {
  const { success } = await (c.env.TOKEN_RATE_LIMITER as RateLimitBinding).limit({ key: `tok:${await sha256Hex(token)}` });
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

/** Hands a refusal to the platform writer after the response (no state shared between requests). */
function handOver(c: RefusalRequest, r: Refusal) {
  const stub = c.env.PLATFORM_AUDIT.get(c.env.PLATFORM_AUDIT.idFromName(PLATFORM_CHAIN));
  c.executionCtx.waitUntil(
    stub.refused([countRefusal(undefined, r)]).then(
      (res) => {
        if (!res.ok) console.error(JSON.stringify({ level: "error", msg: "refusal not recorded", code: res.error.code, requestId: r.requestId }));
      },
      () => console.error(JSON.stringify({ level: "error", msg: "refusal not recorded", requestId: r.requestId })),
    ),
  );
}

/**
 * Records a refusal off the request path: handed to the platform chain's writer after the
 * response, which only counts it in its window (its own storage) and appends one aggregated entry
 * per source, action and reason when the window ends. Then, if the address is over its budget, 429.
 */
export async function refuse(c: RefusalRequest, refusal: Omit<Refusal, "source" | "requestId">, error: ApiError): Promise<never> {
  const over = await refusedOverLimit(c);
  handOver(c, { ...refusal, reason: over ? "rate limited" : refusal.reason, source: clientAddress(c), requestId: c.var.requestId });
  throw over ? limited() : error;
}
