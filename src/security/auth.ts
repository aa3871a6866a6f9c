import type { Config } from "../config";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { auditor } from "./audit";
import { limitToken, refuse, type RefusalRequest } from "./refusals";
import { jwksResolver, KeysUnavailableError, tokenTime, TokenError, VerifiedTokens, verifyJwt, type Role } from "./jwt";

export type Principal = { sub: string; role: Role; officeIds: string[] };

/**
 * What authentication needs of a request, structurally (Hono's context satisfies it): the auth
 * layer does not import the HTTP layer's context type, so dependencies keep pointing down.
 */
export type AuthRequest = RefusalRequest & {
  env: Pick<Env, "OFFICE_BILLING" | "PLATFORM_AUDIT">;
  var: { requestId: string; config: Config };
  req: { header(name: string): string | undefined; method: string; url: string };
  set(key: "principal", value: Principal): void;
};

/** What authorization needs: the authenticated principal and where to audit a denial. */
export type AuthorizedRequest = {
  env: Pick<Env, "OFFICE_BILLING" | "PLATFORM_AUDIT">;
  var: { requestId: string; principal: Principal };
};

const REALM = "office-billing";

function challenge(reason: string | null): Record<string, string> {
  return {
    "WWW-Authenticate": reason
      ? `Bearer realm="${REALM}", error="invalid_token", error_description="${reason}"`
      : `Bearer realm="${REALM}"`,
  };
}

/** Verification options for this environment: HS256 dev tokens only in development and test. */
export function verifyOptions(config: Config) {
  const devTokens = config.ENVIRONMENT === "development" || config.ENVIRONMENT === "test";
  return {
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    devSecret: devTokens ? config.AUTH_DEV_SECRET : undefined,
    jwks: config.AUTH_JWKS_URL ? jwksResolver(config.AUTH_JWKS_URL, { maxStaleSeconds: config.JWKS_MAX_STALE_SECONDS }) : undefined,
  };
}

/** Tokens verified in this isolate, per configuration (another issuer, audience or key source verifies afresh). */
const verifiedTokens = new WeakMap<Config, VerifiedTokens>();

function verified(token: string, config: Config) {
  let tokens = verifiedTokens.get(config);
  if (!tokens) verifiedTokens.set(config, (tokens = new VerifiedTokens((t) => verifyJwt(t, verifyOptions(config)))));
  return tokens.get(token, tokenTime());
}

/**
 * Every /v1 route: a valid `Authorization: Bearer <JWT>` or 401 with `WWW-Authenticate`. A
 * refused token is audited on the platform chain (the reason, never the token), aggregated per
 * client address, reason and minute and written off the request path (security/refusals.ts).
 * Refusals are limited per client address, authenticated requests per token: 429 past the limit.
 */
export function authenticate() {
  return async (c: AuthRequest, next: () => Promise<void>): Promise<void> => {
    const header = c.req.header("authorization");
    const match = header ? /^Bearer ([A-Za-z0-9_\-.=+/]+)$/i.exec(header.trim()) : null;
    let reason: string;
    if (!header) reason = "missing bearer token";
    else if (!match) reason = "malformed authorization header";
    else {
      try {
        const { claims, limitKey } = await verified(match[1]!, c.var.config);
        await limitToken(c, limitKey);
        c.set("principal", { sub: claims.sub, role: claims.role, officeIds: [...claims.office_ids] }); // a copy: the claims may be kept for the token's next request
        return next();
      } catch (err) {
        if (err instanceof KeysUnavailableError) {
          throw new ApiError("SERVICE_UNAVAILABLE", "Access tokens cannot be verified right now; try again shortly.", { headers: { "Retry-After": "5" } });
        }
        if (!(err instanceof TokenError)) throw err;
        reason = err.message;
      }
    }
    // Audited off the request path, aggregated per address, reason and minute; 429 past the address's budget.
    return refuse(
      c,
      { action: "auth.authenticate", outcome: "denied", reason, route: `${c.req.method} ${routeFamily(new URL(c.req.url).pathname)}` },
      new ApiError("UNAUTHORIZED", header ? `The access token was refused: ${reason}.` : "An access token is required.", {
        headers: challenge(header ? reason : null),
      }),
    );
  };
}

/**
 * What may be recorded of a request path: its first two segments (`/v1/offices`). Paths are never
 * stored whole: further segments can carry the clinical system's patient ids, in any encoding.
 */
export function routeFamily(path: string): string {
  const [, first = "", second = ""] = path.split("/");
  const safe = (s: string) => (/^[a-z0-9-]{1,32}$/.test(s) ? s : "…");
  return `/${safe(first)}${second ? `/${safe(second)}` : ""}`;
}

export type Access = {
  /** Audit action name of the operation, e.g. `audit.list`. */
  action: string;
  roles: readonly Role[];
  /** The office the resource belongs to, when it belongs to one. */
  officeId?: string;
  targetIds?: string[];
};

/**
 * Authorizes the principal for an operation. A role that may not perform it → 403; a
 * non-platform principal asking for an office not in its `office_ids` → 404, exactly as for an
 * office that does not exist (no enumeration). Denials are audited here; an allowed operation
 * records its own audit entry with its outcome.
 */
export async function authorize(c: AuthorizedRequest, access: Access): Promise<Principal> {
  const principal = c.var.principal;
  const audit = auditor(c.env, principal, c.var.requestId);
  const denied = { action: access.action, outcome: "denied" as const, targetIds: access.targetIds ?? [] };
  const ownsOffice = access.officeId === undefined || principal.role === "platform_admin" || principal.officeIds.includes(access.officeId);
  if (!ownsOffice) {
    await audit.platform({ ...denied, officeId: access.officeId!, details: { reason: "office not in token" } });
    throw new ApiError("NOT_FOUND", "No such office.");
  }
  if (!access.roles.includes(principal.role)) {
    const event = { ...denied, details: { reason: `role ${principal.role} may not ${access.action}` } };
    if (access.officeId) await audit.office(access.officeId, { ...event, officeId: access.officeId });
    else await audit.platform({ ...event, officeId: null });
    throw new ApiError("FORBIDDEN", `The ${principal.role} role may not perform ${access.action}.`);
  }
  return principal;
}
