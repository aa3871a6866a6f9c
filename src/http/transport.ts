import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./context";
import { ApiError } from "./problem";

export const MAX_BODY_BYTES = 64 * 1024;
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

/** Request bodies over 64 KiB → 413, counted as they stream (Content-Length is not trusted). */
export function limitBody(): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new ApiError("PAYLOAD_TOO_LARGE", `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`);
    },
  });
}
