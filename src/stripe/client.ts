import Stripe from "stripe";
import { scanRequest, type Finding, type GuardContext } from "./guard";
import { fieldRules, type StripeOperation } from "./payloads";

/** Stripe API version the gateway is written against. */
export const STRIPE_API_VERSION = "2026-02-25.clover" as const;

/** Raised before anything is sent when the service-wide rate limiter did not answer: the request never left. */
export class RateLimiterUnavailableError extends Error {
  constructor() {
    super("the Stripe rate limiter did not answer");
    this.name = "RateLimiterUnavailableError";
  }
}

/** Raised before anything is sent when the guard finds an identifier: the request never leaves. */
export class EgressBlockedError extends Error {
  constructor(readonly findings: Finding[]) {
    super(`blocked by the PHI egress guard: ${[...new Set(findings.map((f) => `${f.kind} in ${f.field}`))].join(", ")}`);
    this.name = "EgressBlockedError";
  }
}

export type SentRequest = { method: string; path: string; body: string; headers: Record<string, string> };

/** What one call puts behind the guard: its rules (operation), its guard context, its observer and its slot. */
type GuardedCall = {
  guard: () => GuardContext;
  onSend: (req: SentRequest) => void;
  beforeSend: () => Promise<void>;
  operation: StripeOperation | null;
};

/**
 * The Stripe SDK's fetch client behind the guard: every request the SDK serializes — path, query,
 * body, the headers we set — is scanned first, with the rules of the operation in flight, and
 * blocked when anything is found. `onSend` observes what crossed (for the Stripe request log).
 * A client made without a call, or between calls (`withStripeClient`), sends nothing: the guard
 * fails closed. Each request keeps the call it started in, to its end.
 */
export class GuardedHttpClient implements Stripe.HttpClient {
  readonly #inner = Stripe.createFetchHttpClient();
  #call: GuardedCall | null;

  constructor(
    guard?: () => GuardContext,
    onSend: (req: SentRequest) => void = () => {},
    /** Waits for the request's slot under the service-wide rate limit: last, just before it leaves. */
    beforeSend: () => Promise<void> = async () => {},
  ) {
    this.#call = guard ? { guard, onSend, beforeSend, operation: null } : null;
  }

  get operation(): StripeOperation | null {
    return this.#call?.operation ?? null;
  }

  set operation(operation: StripeOperation | null) {
    if (this.#call) this.#call.operation = operation;
  }

  /** The call whose requests this client now sends (null: none, every request is refused). */
  bind(call: GuardedCall | null): void {
    this.#call = call;
  }

  getClientName(): string {
    return "guarded-fetch";
  }

  makeRequest(
    host: string,
    port: string,
    path: string,
    method: string,
    headers: Record<string, string | number | string[]>,
    requestData: string | null,
    protocol: Stripe.HttpProtocol,
    timeout: number,
  ): Promise<Stripe.HttpClientResponse> {
    const call = this.#call;
    const [pathname, query] = path.split("?", 2) as [string, string | undefined];
    const own: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      // Our own headers; the SDK's fixed ones (user agent, versions) and the key are not ours to scan.
      if (/^(idempotency-key|stripe-account|stripe-context)$/i.test(k)) own[k] = String(v);
    }
    if (!call || !call.operation) return Promise.reject(new EgressBlockedError([{ kind: "unknown_field", field: "operation" }]));
    const body = requestData ?? "";
    const rules = fieldRules[call.operation];
    const findings = scanRequest({ method, path: pathname, query, body, headers: own }, call.guard(), { text: [...rules.text], numeric: [...rules.numeric] });
    if (findings.length > 0) return Promise.reject(new EgressBlockedError(findings));
    // The slot is taken after the SDK has built the request and the guard has read it, so it leaves
    // at its slot: the less happens between the grant and the send, the less requests bunch on arrival.
    return call.beforeSend().then(
      () => {
        call.onSend({ method, path, body, headers: own });
        return this.#inner.makeRequest(host, port, path, method as "GET" | "POST" | "PUT" | "DELETE", headers, requestData, protocol, timeout);
      },
      (err: unknown) => Promise.reject(err instanceof Error && err.name === "PacerBusyError" ? err : new RateLimiterUnavailableError()),
    );
  }
}

/** Stripe clients kept for reuse in this isolate, each idle (its guarded client bound to no call). */
const idleClients: { key: string; stripe: Stripe; http: GuardedHttpClient }[] = [];
const MAX_IDLE_CLIENTS = 32;

/** How many clients wait for reuse (tests). */
export const idleStripeClients = () => idleClients.length;

/**
 * Runs `run` with a Stripe client whose requests go through the guard under `call`; `run` must
 * await every request it makes. Clients are reused, one call at a time each: building the SDK's client (its hundred resource objects) was
 * ~4% of the Worker's thread in the invoicing run (docs/performance.md). A client holds no I/O
 * and no call's data once its call has ended; a request still in flight keeps its own call.
 */
export async function withStripeClient<T>(
  secretKey: string,
  apiBase: string | undefined,
  timeoutMs: number | undefined,
  call: GuardedCall,
  run: (stripe: Stripe) => Promise<T>,
): Promise<T> {
  const key = `${secretKey}\n${apiBase ?? ""}\n${timeoutMs}`;
  const at = idleClients.findIndex((c) => c.key === key);
  const client = at >= 0 ? idleClients.splice(at, 1)[0]! : (() => {
    const http = new GuardedHttpClient();
    return { key, http, stripe: stripeClient(secretKey, apiBase, http, timeoutMs) };
  })();
  client.http.bind(call);
  let settled = false;
  try {
    const result = await run(client.stripe);
    settled = true;
    return result;
  } finally {
    client.http.bind(null);
    // Reused only after a call whose requests all settled (`run` awaits each of its requests): a
    // failed call may have left one still on its way through the SDK to `makeRequest`, which must
    // not reach it under another call. A client left out is dropped; it is bound to no call.
    if (settled && idleClients.length < MAX_IDLE_CLIENTS) idleClients.push(client);
  }
}

/** A Stripe client for one operation context, pointed at Stripe or at the local emulator. */
export function stripeClient(secretKey: string, apiBase: string | undefined, http: GuardedHttpClient, timeoutMs = 20_000): Stripe {
  const base = apiBase ? new URL(apiBase) : null;
  return new Stripe(secretKey, {
    apiVersion: STRIPE_API_VERSION,
    httpClient: http,
    // Retries are the gateway's (with the outbox), so a blocked request is never retried by the SDK.
    maxNetworkRetries: 0,
    timeout: timeoutMs,
    // No timings of earlier requests in the headers of later ones (a client serves many offices' calls).
    telemetry: false,
    ...(base
      ? { host: base.hostname, port: Number(base.port || (base.protocol === "https:" ? 443 : 80)), protocol: base.protocol.replace(":", "") as "http" | "https" }
      : {}),
  });
}

/** The SDK reports a client-side refusal as a connection error; this gives the guard's (or the limiter's) own error back. */
export function unwrapBlocked(err: unknown): unknown {
  const detail = (err as { detail?: unknown } | null)?.detail;
  return detail instanceof EgressBlockedError || detail instanceof RateLimiterUnavailableError || (detail instanceof Error && detail.name === "PacerBusyError") ? detail : err;
}
