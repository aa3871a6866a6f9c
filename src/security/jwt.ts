import { z } from "zod";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "./encoding";

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

const headerSchema = z.object({ alg: z.string(), typ: z.string().optional(), kid: z.string().optional() });

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

  const signed = utf8(`${h}.${p}`);
  let key: CryptoKey | null = null;
  let params: string | { name: string; hash: string };
  switch (header.alg) {
    case "HS256":
      if (!opts.devSecret) throw new TokenError("algorithm not accepted");
      key = await crypto.subtle.importKey("raw", utf8(opts.devSecret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
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
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  if (claims.exp + MAX_CLOCK_SKEW_S <= now) throw new TokenError("token expired");
  if (claims.nbf !== undefined && claims.nbf - MAX_CLOCK_SKEW_S > now) throw new TokenError("token not yet valid");
  if (claims.iat !== undefined && claims.iat - MAX_CLOCK_SKEW_S > now) throw new TokenError("token issued in the future");
  if (claims.iss !== opts.issuer) throw new TokenError("wrong issuer");
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(opts.audience)) throw new TokenError("wrong audience");
  return claims;
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
const jwksCache = new Map<string, { at: number; keys: Jwk[] }>();
export const JWKS_TTL_MS = 10 * 60_000;

/** A JWKS resolver with a per-isolate cache; refetches once on an unknown `kid` (key rotation). */
export function jwksResolver(url: string, fetcher: typeof fetch = fetch) {
  const load = async (force: boolean): Promise<Jwk[]> => {
    const hit = jwksCache.get(url);
    if (hit && !force && Date.now() - hit.at < JWKS_TTL_MS) return hit.keys;
    const res = await fetcher(url, { headers: { accept: "application/json" } });
    if (!res.ok) throw new TokenError("signing keys unavailable");
    const body = (await res.json()) as { keys?: Jwk[] };
    const keys = Array.isArray(body.keys) ? body.keys : [];
    jwksCache.set(url, { at: Date.now(), keys });
    return keys;
  };
  return async (kid: string | undefined, alg: string): Promise<CryptoKey | null> => {
    const pick = (keys: Jwk[]) =>
      keys.find((k) => (kid === undefined || k.kid === kid) && (k.alg === undefined || k.alg === alg) && k.use !== "enc" && (alg === "RS256" ? k.kty === "RSA" : k.kty === "EC" && k.crv === "P-256"));
    let jwk = pick(await load(false));
    if (!jwk && kid !== undefined) jwk = pick(await load(true));
    if (!jwk) return null;
    const algorithm = alg === "RS256" ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } : { name: "ECDSA", namedCurve: "P-256" };
    return crypto.subtle.importKey("jwk", jwk, algorithm, false, ["verify"]);
  };
}
