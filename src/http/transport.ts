import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./context";
import { ApiError } from "./problem";

export const MAX_BODY_BYTES = 64 * 1024;
/** Stripe webhook events can be large (an invoice with its lines): up to 1 MiB on that route. */
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;
export const WEBHOOK_PATH = "/webhooks/stripe";

const bodyLimit = (path: string) => (path === WEBHOOK_PATH ? MAX_WEBHOOK_BODY_BYTES : MAX_BODY_BYTES);
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
 * Request bodies: read in full before any validator runs, counting bytes as they stream
 * (Content-Length is not trusted), so a body over 64 KiB is a 413 whatever its framing. A body
 * that is not JSON is a 415: every operation of this API takes JSON, and a validator must never
 * be skipped because of a content type.
 */
export function readBody(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const limit = bodyLimit(c.req.path);
    const declared = Number(raw.headers.get("content-length") ?? "NaN");
    if (declared > limit) throw tooLarge(limit);
    const reader = raw.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel();
        throw tooLarge(limit);
      }
      chunks.push(value);
    }
    const body = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    if (size > 0 && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(raw.headers.get("content-type") ?? "")) {
      throw new ApiError("UNSUPPORTED_MEDIA_TYPE", "Request bodies must be JSON (Content-Type: application/json).");
    }
    c.req.raw = new Request(raw, { body });
    return next();
  };
}

const tooLarge = (limit: number) => new ApiError("PAYLOAD_TOO_LARGE", `Request bodies are limited to ${limit} bytes.`);
