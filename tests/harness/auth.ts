import { env } from "cloudflare:test";
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
