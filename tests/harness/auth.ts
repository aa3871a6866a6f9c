import { env } from "cloudflare:test";
import { toBase64Url, utf8 } from "../../src/security/encoding";
import { signDevJwt, type Role } from "../../src/security/jwt";

/** Mints a real HS256 token with the test run's AUTH_DEV_SECRET (no verification is bypassed). */
export async function mintToken(
  role: Role,
  officeIds: string[] = [],
  opts: { sub?: string; ttlS?: number; claims?: Record<string, unknown>; header?: Record<string, unknown>; secret?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signDevJwt(
    opts.secret ?? env.AUTH_DEV_SECRET!,
    {
      sub: opts.sub ?? `test-${role}-${crypto.randomUUID()}`,
      role,
      office_ids: officeIds,
      iss: env.AUTH_ISSUER,
      aud: env.AUTH_AUDIENCE,
      iat: now,
      nbf: now,
      exp: now + (opts.ttlS ?? 600),
      ...opts.claims,
    },
    opts.header,
  );
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Mints an RS256 or ES256 token with the stand-in identity provider's private key. */
export async function mintJwksToken(alg: "RS256" | "ES256", claims: Record<string, unknown>, kid?: string): Promise<string> {
  const keys = JSON.parse(env.TEST_JWKS_PRIVATE_KEYS) as { rsa: JsonWebKey & { kid: string }; ec: JsonWebKey & { kid: string } };
  const jwk = alg === "RS256" ? keys.rsa : keys.ec;
  const { kid: keyId, ...material } = jwk;
  const algorithm = alg === "RS256" ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } : { name: "ECDSA", namedCurve: "P-256" };
  const key = await crypto.subtle.importKey("jwk", material, algorithm, false, ["sign"]);
  const enc = (v: unknown) => toBase64Url(utf8(JSON.stringify(v)));
  const signingInput = `${enc({ alg, typ: "JWT", kid: kid ?? keyId })}.${enc(claims)}`;
  const params = alg === "RS256" ? "RSASSA-PKCS1-v1_5" : { name: "ECDSA", hash: "SHA-256" };
  const sig = await crypto.subtle.sign(params, key, utf8(signingInput));
  return `${signingInput}.${toBase64Url(sig)}`;
}

export function standardClaims(role: Role, officeIds: string[] = [], extra: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { sub: `idp-${role}`, role, office_ids: officeIds, iss: env.AUTH_ISSUER, aud: env.AUTH_AUDIENCE, iat: now, exp: now + 600, ...extra };
}
