import { z } from "zod";
import { now } from "../clock";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "./encoding";
import { sha256HexSync } from "./sha256";

/**
 * JWT verification on WebCrypto. Production keys come from a JWKS URL (RS256, ES256); local
 * development and tests use HS256 with a shared secret, accepted only when the environment is
 * `development` or `test` (the caller decides by passing `devSecret` or not). `alg: none` and any
 * algorithm not expected for the key source are refused.
 */
export const roles = ["platform_admin", "office_admin", "office_viewer", "clinical_system"] as const;
export type Role = (typeof roles)[number];

export const claimsSchema = z.object({
  // Printable ASCII only: the subject is recorded in the audit trail, byte for byte.
  sub: z.string().regex(/^[\x20-\x7e]{1,256}$/),
  role: z.enum(roles),
  office_ids: z.array(z.string().min(1).max(64)).max(1000).default([]),
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  exp: z.number(),
  nbf: z.number().optional(),
  iat: z.number().optional(),
});
export type Claims = z.infer<typeof claimsSchema>;

export const MAX_CLOCK_SKEW_S = 60;

/** The time tokens are checked against: real time (transport security, as a signature's expiry), never the injectable clock. */
export const tokenTime = (): number => Date.now();
/** Tokens valid for longer than this (from now) are refused. */
export const MAX_TOKEN_LIFETIME_S = 24 * 3600;

/** The identity provider's keys could not be fetched: a service problem, not a bad token. */
export class KeysUnavailableError extends Error {
  constructor() {
    super("signing keys unavailable");
    this.name = "KeysUnavailableError";
  }
}

export class TokenError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "TokenError";
  }
}

export type VerifyOptions = {
  issuer: string;
  audience: string;
  /** HS256 secret; only passed in development and test. */
  devSecret?: string;
  /** Resolves a JWKS key by `kid` for RS256/ES256. */
  jwks?: (kid: string | undefined, alg: string) => Promise<CryptoKey | null>;
  now?: number;
};

const headerSchema = z.object({ alg: z.string(), typ: z.string().optional(), kid: z.string().max(256).optional(), crit: z.unknown().optional() });

/** The dev secret's HMAC key, imported once per isolate (not once per request). */
const devKeys = new Map<string, Promise<CryptoKey>>();
function devVerifyKey(secret: string): Promise<CryptoKey> {
  let key = devKeys.get(secret);
  if (!key) {
    if (devKeys.size >= 4) devKeys.clear(); // a rotated secret replaces the old one
    key = crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    key.catch(() => devKeys.delete(secret));
    devKeys.set(secret, key);
  }
  return key;
}

export async function verifyJwt(token: string, opts: VerifyOptions): Promise<Claims> {
  const parts = token.split(".");
  if (parts.length !== 3 || token.length > 8192) throw new TokenError("malformed token");
  const [h, p, s] = parts as [string, string, string];
  const headerBytes = fromBase64Url(h);
  const payloadBytes = fromBase64Url(p);
  const signature = fromBase64Url(s);
  if (!headerBytes || !payloadBytes || !signature) throw new TokenError("malformed token");
  let header: z.infer<typeof headerSchema>;
  let payload: unknown;
  try {
    header = headerSchema.parse(JSON.parse(fromUtf8(headerBytes)));
    payload = JSON.parse(fromUtf8(payloadBytes));
  } catch {
    throw new TokenError("malformed token");
  }

  // No critical extensions are understood, so a token that declares any is refused (RFC 7515 §4.1.11).
  if (header.crit !== undefined) throw new TokenError("unsupported critical header");
  const signed = utf8(`${h}.${p}`);
  let key: CryptoKey | null = null;
  let params: string | { name: string; hash: string };
  switch (header.alg) {
    case "HS256":
      if (!opts.devSecret) throw new TokenError("algorithm not accepted");
      key = await devVerifyKey(opts.devSecret);
      params = "HMAC";
      break;
    case "RS256":
      key = opts.jwks ? await opts.jwks(header.kid, "RS256") : null;
      params = "RSASSA-PKCS1-v1_5";
      break;
    case "ES256":
      key = opts.jwks ? await opts.jwks(header.kid, "ES256") : null;
      params = { name: "ECDSA", hash: "SHA-256" };
      break;
    default:
      throw new TokenError("algorithm not accepted");
  }
  if (!key) throw new TokenError("unknown signing key");
  if (!(await crypto.subtle.verify(params, key, signature, signed))) throw new TokenError("bad signature");

  const parsed = claimsSchema.safeParse(payload);
  if (!parsed.success) throw new TokenError("missing or malformed claims");
  const claims = parsed.data;
  checkTimes(claims, opts.now ?? tokenTime());
  if (claims.iss !== opts.issuer) throw new TokenError("wrong issuer");
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(opts.audience)) throw new TokenError("wrong audience");
  return claims;
}

/** How long a verified token is taken as verified again without its signature checked (its times are checked every time). */
export const VERIFIED_TTL_MS = 60_000;
/** Verified tokens kept (all are dropped when full). */
const MAX_VERIFIED = 1024;

/**
 * Tokens verified lately, with their claims and the key their rate limit counts under (`tok:` and
 * the token's SHA-256, never the token). A client sends the same token with every request: for
 * VERIFIED_TTL_MS after it was verified, its claims are taken again without decoding it or
 * checking its signature (with the rate limit's hash, a tenth of a single patient report's time in
 * the Worker under a profiler, docs/performance.md), but its expiry and other times are checked
 * against `at` every time. A key withdrawn from the JWKS stops the tokens it signed within
 * VERIFIED_TTL_MS.
 */
export class VerifiedTokens {
  #tokens = new Map<string, { claims: Claims; limitKey: string; at: number }>();
  constructor(
    private readonly verify: (token: string) => Promise<Claims>,
    private readonly ttlMs = VERIFIED_TTL_MS,
    private readonly max = MAX_VERIFIED,
  ) {}

  async get(token: string, at: number): Promise<{ claims: Claims; limitKey: string }> {
    const kept = this.#tokens.get(token);
    if (kept && at >= kept.at && at - kept.at < this.ttlMs) {
      checkTimes(kept.claims, at);
      return kept;
    }
    const claims = await this.verify(token);
    const entry = { claims, limitKey: `tok:${sha256HexSync(token)}`, at };
    if (this.#tokens.size >= this.max) this.#tokens.clear();
    this.#tokens.set(token, entry);
    return entry;
  }
}

/** A token's times against `at` (ms): expired, too long-lived, not yet valid, issued in the future. */
export function checkTimes(claims: Claims, at: number): void {
  const now = Math.floor(at / 1000);
  if (claims.exp + MAX_CLOCK_SKEW_S <= now) throw new TokenError("token expired");
  if (claims.exp - now > MAX_TOKEN_LIFETIME_S + MAX_CLOCK_SKEW_S) throw new TokenError("token lifetime too long");
  if (claims.nbf !== undefined && claims.nbf - MAX_CLOCK_SKEW_S > now) throw new TokenError("token not yet valid");
  if (claims.iat !== undefined && claims.iat - MAX_CLOCK_SKEW_S > now) throw new TokenError("token issued in the future");
}

/** Signs an HS256 token (development and tests only: `npm run token`, the test harness). */
export async function signDevJwt(secret: string, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const h = toBase64Url(utf8(JSON.stringify({ alg: "HS256", typ: "JWT", ...header })));
  const p = toBase64Url(utf8(JSON.stringify(claims)));
  const key = await crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = await crypto.subtle.sign("HMAC", key, utf8(`${h}.${p}`));
  return `${h}.${p}.${toBase64Url(sig)}`;
}

type Jwk = JsonWebKey & { kid?: string; alg?: string; use?: string };
type CacheEntry = { at: number; keys: Jwk[]; lastForced: number; inflight?: Promise<Jwk[]> };
const jwksCache = new Map<string, CacheEntry>();
export const JWKS_TTL_MS = 10 * 60_000;
/** An unknown `kid` forces a refetch at most this often (key rotation, without amplification). */
export const JWKS_FORCED_REFRESH_MS = 60_000;
export const JWKS_TIMEOUT_MS = 3_000;
/**
 * How long after the last successful JWKS fetch its keys are still accepted while the identity
 * provider cannot be reached (`JWKS_MAX_STALE_SECONDS`, default 24 h). Past it, tokens are not
 * verified at all (503): a key the provider revoked while unreachable stops working within this
 * bound. docs/security.md, "Signing keys of the identity provider".
 */
export const JWKS_MAX_STALE_DEFAULT_S = 24 * 3600;

export type JwksOptions = {
  fetcher?: typeof fetch;
  /** Seconds the last fetched keys serve while refetching fails (default JWKS_MAX_STALE_DEFAULT_S). */
  maxStaleSeconds?: number;
  /** Milliseconds since the epoch; `now()` of src/clock.ts unless a test passes another. */
  clock?: () => number;
};

/**
 * A JWKS resolver with a per-isolate cache. Keys are refetched after the TTL, or early when a
 * token names an unknown `kid` (at most once a minute); concurrent fetches are shared; when a
 * fetch fails, the keys already known keep serving for at most `maxStaleSeconds` after the last
 * successful fetch; past that, or with none known, KeysUnavailableError (503).
 */
export function jwksResolver(url: string, options: JwksOptions = {}) {
  const fetcher = options.fetcher ?? fetch;
  const clock = options.clock ?? now;
  const maxStaleMs = (options.maxStaleSeconds ?? JWKS_MAX_STALE_DEFAULT_S) * 1000;
  const usable = (entry: CacheEntry | undefined): entry is CacheEntry => !!entry && entry.keys.length > 0 && entry.at > 0 && clock() - entry.at <= maxStaleMs;
  const fetchKeys = async (entry: CacheEntry | undefined): Promise<Jwk[]> => {
    try {
      const res = await fetcher(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(JWKS_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
      const body = (await res.json()) as { keys?: Jwk[] };
      const keys = Array.isArray(body.keys) ? body.keys : [];
      jwksCache.set(url, { at: clock(), keys, lastForced: entry?.lastForced ?? 0 });
      return keys;
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "JWKS fetch failed", error: err instanceof Error ? err.message : "unknown" }));
      if (usable(entry)) return entry.keys; // stale keys beat no keys, within the bound
      throw new KeysUnavailableError();
    }
  };
  const load = (force: boolean): Promise<Jwk[]> => {
    const entry = jwksCache.get(url);
    const fresh = entry && clock() - entry.at < JWKS_TTL_MS;
    if (entry && fresh && !force) return Promise.resolve(entry.keys);
    if (entry && force && clock() - entry.lastForced < JWKS_FORCED_REFRESH_MS) return Promise.resolve(entry.keys);
    if (entry?.inflight) return entry.inflight;
    const inflight = fetchKeys(entry).finally(() => {
      const current = jwksCache.get(url);
      if (current) current.inflight = undefined;
    });
    jwksCache.set(url, { at: entry?.at ?? 0, keys: entry?.keys ?? [], lastForced: force ? clock() : (entry?.lastForced ?? 0), inflight });
    return inflight;
  };
  return async (kid: string | undefined, alg: string): Promise<CryptoKey | null> => {
    const pick = (keys: Jwk[]) =>
      keys.find((k) => (kid === undefined || k.kid === kid) && (k.alg === undefined || k.alg === alg) && k.use !== "enc" && (alg === "RS256" ? k.kty === "RSA" : k.kty === "EC" && k.crv === "P-256"));
    let jwk = pick(await load(false));
    if (!jwk && kid !== undefined) jwk = pick(await load(true));
    if (!jwk) return null;
    const algorithm = alg === "RS256" ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } : { name: "ECDSA", namedCurve: "P-256" };
    try {
      return await crypto.subtle.importKey("jwk", jwk, algorithm, false, ["verify"]);
    } catch {
      return null; // a malformed key in the set is no key
    }
  };
}
