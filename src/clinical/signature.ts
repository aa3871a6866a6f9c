import { hmacSha256Hex, timingSafeEqual } from "../security/crypto";

/** The header carrying the signature: `t=<unix seconds>,v1=<hex>[,v1=<hex>]` (docs/clinical-events.md). */
export const SIGNATURE_HEADER = "Billing-Signature";
/** A receiver refuses a signed timestamp further than this from its clock (replays of old deliveries). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * Signs `${t}.${body}` with HMAC-SHA256 under each secret: the current one first, then, during a
 * rotation, the previous one — a receiver holding either verifies.
 */
export async function signatureHeader(secrets: readonly string[], body: string, unixSeconds: number): Promise<string> {
  const signatures = await Promise.all(secrets.map((s) => hmacSha256Hex(s, `${unixSeconds}.${body}`)));
  return [`t=${unixSeconds}`, ...signatures.map((v) => `v1=${v}`)].join(",");
}

/** Verifies a header against the receiver's secret(s); what a receiver does (tools/clinical-receiver.mjs does the same in Node). */
export async function verifySignature(header: string | null, body: string, secrets: readonly string[], nowSeconds: number, tolerance = SIGNATURE_TOLERANCE_SECONDS): Promise<boolean> {
  if (!header) return false;
  const parts = header.split(",").map((p) => p.trim());
  const t = Number(parts.find((p) => p.startsWith("t="))?.slice(2));
  const given = parts.filter((p) => p.startsWith("v1=")).map((p) => p.slice(3));
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > tolerance || given.length === 0) return false;
  for (const secret of secrets) {
    const expected = await hmacSha256Hex(secret, `${t}.${body}`);
    if (given.some((g) => timingSafeEqual(g, expected))) return true;
  }
  return false;
}
