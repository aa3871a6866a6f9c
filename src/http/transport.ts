import type { Context, MiddlewareHandler } from "hono";
import { loggableError } from "../db/errors";
import { fromUtf8 } from "../security/encoding";
import type { AppEnv } from "./context";
import { ApiError } from "./problem";

export const MAX_BODY_BYTES = 64 * 1024;
/** Stripe webhook events can be large (an invoice with its lines): up to 1 MiB on that route. */
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;
export const WEBHOOK_PATH = "/webhooks/stripe";

/** Up to 1,000 patient events in one request (docs/payment-plan.md §5.10): up to 1 MiB on that route. */
export const MAX_BULK_BODY_BYTES = 1024 * 1024;
const BULK_EVENTS_PATH = /^\/v1\/offices\/[^/]+\/patient-events$/;

const bodyLimit = (path: string) => (path === WEBHOOK_PATH ? MAX_WEBHOOK_BODY_BYTES : BULK_EVENTS_PATH.test(path) ? MAX_BULK_BODY_BYTES : MAX_BODY_BYTES);
const TLS_OK = new Set(["TLSv1.2", "TLSv1.3"]);

/**
 * In production, a request that did not arrive over TLS 1.2 or 1.3 is refused with 426 before
 * anything else looks at it (Cloudflare terminates TLS and reports the version in `cf.tlsVersion`).
 */
export function requireTls(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.var.config.ENVIRONMENT === "production") {
      const cf = (c.req.raw as { cf?: { tlsVersion?: string } }).cf;
      const plain = new URL(c.req.url).protocol !== "https:";
      if (plain || !cf?.tlsVersion || !TLS_OK.has(cf.tlsVersion)) {
        throw new ApiError("UPGRADE_REQUIRED", "This API is served over TLS 1.2 or 1.3 only.", {
          headers: { Upgrade: "TLS/1.3, TLS/1.2", Connection: "Upgrade" },
        });
      }
    }
    return next();
  };
}

/** Headers on every response; billing data is never cached. */
export function securityHeaders(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    c.header("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    c.header("X-Frame-Options", "DENY");
    if (!c.res.headers.has("Content-Security-Policy")) {
      c.header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    }
    if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
  };
}

/**
 * Request bodies: read in full before any validator runs, their bytes counted (Content-Length is
 * not trusted: a declared length within the limit is read in one call and counted once read, any
 * other body counted as it streams and cut off at the limit), so a body over 64 KiB (1 MiB on the webhook and bulk patient-events routes) is a 413 whatever its framing. A body
 * that is not JSON is a 415: every operation of this API takes JSON, and a validator must never
 * be skipped because of a content type. A GET or HEAD request with a body is a 400
 * BODY_NOT_ALLOWED (a Request with those methods cannot even be rebuilt with a body), and a body
 * that breaks off mid-stream (the client hung up) is logged once at warn level and answered 400.
 */
export function readBody(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const bodyless = raw.method === "GET" || raw.method === "HEAD";
    const limit = bodyless ? 0 : bodyLimit(c.req.path);
    const declared = Number(raw.headers.get("content-length") ?? "NaN");
    if (!bodyless && Number.isSafeInteger(declared) && declared >= 0 && declared <= limit) {
      // A declared length within the limit: the runtime delivers that many bytes (HTTP framing),
      // read in one call — and counted again once read, the declaration being only the client's.
      let body: ArrayBuffer;
      try {
        body = await raw.arrayBuffer();
      } catch (err) {
        throw brokeOff(c.var.requestId, raw.method, null, err);
      }
      if (body.byteLength > limit) throw tooLarge(limit);
      jsonBody(c, fromUtf8(new Uint8Array(body)));
      return next();
    }
    const reader = raw.body.getReader();
    const refuse = async (error: ApiError) => {
      await reader.cancel().catch(() => {});
      return error;
    };
    if (declared > limit) throw await refuse(bodyless ? bodyNotAllowed(raw.method) : tooLarge(limit));
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (err) {
        throw brokeOff(c.var.requestId, raw.method, size, err);
      }
      if (read.done) break;
      size += read.value.byteLength;
      if (size > limit) throw await refuse(bodyless ? bodyNotAllowed(raw.method) : tooLarge(limit));
      chunks.push(read.value);
    }
    // An empty body (Content-Length: 0, or an empty chunked one) is no body: a GET goes on as it is.
    if (bodyless) return next();
    const body = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    jsonBody(c, fromUtf8(body));
    return next();
  };
}

/**
 * The body, read, as the routes' validators and handlers will read it (Hono's body cache: no copy
 * into a second Request); a body that is not JSON is refused (an empty one is no body).
 */
function jsonBody(c: Context<AppEnv>, text: string) {
  if (text.length > 0 && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(c.req.header("content-type") ?? "")) {
    throw new ApiError("UNSUPPORTED_MEDIA_TYPE", "Request bodies must be JSON (Content-Type: application/json).");
  }
  // Hono keeps each body form as a promise (its type says the value).
  (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(text);
}

/** A body that broke off: nobody reads the answer; it is logged once, as a warning, not as a server error. */
function brokeOff(requestId: string, method: string, bytesRead: number | null, err: unknown) {
  console.warn(JSON.stringify({ level: "warn", msg: "request body broke off: client disconnected mid-body", requestId, method, bytesRead, error: loggableError(err) }));
  return new ApiError("BAD_REQUEST", "The request body ended before it was complete.");
}

const tooLarge = (limit: number) => new ApiError("PAYLOAD_TOO_LARGE", `Request bodies are limited to ${limit} bytes.`);
const bodyNotAllowed = (method: string) => new ApiError("BODY_NOT_ALLOWED", `A ${method} request must not carry a body; send it without one.`);
