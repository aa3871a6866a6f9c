import { fromBase64Url, fromUtf8, toBase64Url, toHex, utf8 } from "./encoding";
import { hmacSha256HexSync } from "./sha256";

export async function sha256Hex(data: string | Uint8Array<ArrayBuffer>): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? utf8(data) : data));
}

/**
 * HMAC-SHA256 under a secret string, hex. Computed in the isolate (./sha256.ts: the same bytes as
 * WebCrypto's, two compressions per short message once the secret's pads are kept), so a bulk
 * request's 2,000 HMACs are not 2,000 asynchronous WebCrypto calls; nothing is awaited, so no
 * pending import can outlive the request that made it.
 */
export function hmacSha256Hex(secret: string, message: string): Promise<string> {
  return Promise.resolve(hmacSha256HexSync(secret, message));
}

/**
 * The pseudonym under which the billing database knows a patient:
 * HMAC-SHA256(PATIENT_KEY_SECRET, officeId + ":" + patientId), hex. The clinical system, which
 * knows patient ids, can recompute it; nobody holding billing data alone can reverse it.
 */
export function patientKey(secret: string, officeId: string, patientId: string): Promise<string> {
  return Promise.resolve(patientKeySync(secret, officeId, patientId));
}

/** `patientKey`, computed at once (the bulk route's thousand pseudonyms). */
export function patientKeySync(secret: string, officeId: string, patientId: string): string {
  return hmacSha256HexSync(secret, `${officeId}:${patientId}`);
}

/**
 * Patient pseudonyms rotate by chaining: version 1 is `patientKey(PATIENT_KEY_SECRET, ...)` above
 * (the root, never replaced), and version n+1 is HMAC-SHA256(secret n+1, version n's pseudonym),
 * hex. Stored pseudonyms move to a new version without any raw id (the new one is derived from
 * the old), and an incoming raw id is hashed through the whole chain. `chain` holds the secrets
 * of versions 2, 3, ... in order (PATIENT_KEY_CHAIN), so the current version is chain.length + 1.
 */
export async function advancePatientKey(chain: readonly string[], key: string, fromVersion: number, toVersion: number): Promise<string> {
  return advancePatientKeySync(chain, key, fromVersion, toVersion);
}

/** `advancePatientKey`, computed at once. */
export function advancePatientKeySync(chain: readonly string[], key: string, fromVersion: number, toVersion: number): string {
  if (fromVersion < 1 || toVersion < fromVersion || toVersion > chain.length + 1) throw new Error("patient key version out of range");
  let out = key;
  for (let v = fromVersion + 1; v <= toVersion; v++) out = hmacSha256HexSync(chain[v - 2]!, out);
  return out;
}

/** Constant-time comparison of two strings of equal length. */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Field encryption at rest: AES-256-GCM with a random 96-bit IV. The stored form
 * `<keyId>.<iv>.<ciphertext+tag>` (base64url) records which key encrypted it, so keys can rotate:
 * values under an older key stay readable while that key is still configured.
 */
export type DataKeyring = {
  current: string;
  keys: Map<string, CryptoKey>;
  /** DATA_INDEX_KEY: every index is written under it. */
  indexSecret: string;
  /** DATA_INDEX_KEY_PREVIOUS, while a re-index runs: lookups try it too. */
  previousIndexSecret?: string;
};

/**
 * A keyring variable — `<keyId>:<base64 32 bytes>[,<keyId>:<base64>...]`, the first key current,
 * the others kept for what was written under them (rotation) — with each key imported for `use`.
 * Shared by `DATA_ENCRYPTION_KEY` (AES-GCM) and `AUDIT_KEY` (HMAC-SHA256).
 */
export async function importKeyring(
  spec: string,
  what: string,
  use: { algorithm: Parameters<SubtleCrypto["importKey"]>[2]; usages: string[] },
): Promise<{ current: string; keys: Map<string, CryptoKey> }> {
  const keys = new Map<string, CryptoKey>();
  let current: string | undefined;
  for (const part of spec.split(",")) {
    const [id, b64] = part.trim().split(":");
    const raw = b64 ? fromBase64Url(b64) : null;
    if (!id || !raw || raw.length !== 32) throw new Error(`malformed ${what}`);
    if (keys.has(id)) throw new Error(`duplicate ${what} id`);
    keys.set(id, await crypto.subtle.importKey("raw", raw, use.algorithm, false, use.usages));
    current ??= id;
  }
  return { current: current!, keys };
}

/** Parses `DATA_ENCRYPTION_KEY` (the first key is current) with the lookup-index secrets. */
export async function loadKeyring(spec: string, indexSecret: string, previousIndexSecret?: string): Promise<DataKeyring> {
  const { current, keys } = await importKeyring(spec, "data encryption key", { algorithm: "AES-GCM", usages: ["encrypt", "decrypt"] });
  return { current, keys, indexSecret, ...(previousIndexSecret ? { previousIndexSecret } : {}) };
}

export async function encryptField(keyring: DataKeyring, plaintext: string, context: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = keyring.keys.get(keyring.current)!;
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: utf8(context) }, key, utf8(plaintext));
  return `${keyring.current}.${toBase64Url(iv)}.${toBase64Url(ct)}`;
}

export async function decryptField(keyring: DataKeyring, stored: string, context: string): Promise<string> {
  const [keyId, ivText, ctText] = stored.split(".");
  const key = keyId ? keyring.keys.get(keyId) : undefined;
  const iv = ivText ? fromBase64Url(ivText) : null;
  const ct = ctText ? fromBase64Url(ctText) : null;
  if (!key || !iv || !ct) throw new Error("encrypted field unreadable: unknown key or malformed value");
  const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: utf8(context) }, key, ct);
  return fromUtf8(new Uint8Array(pt));
}

/** The key id a stored value was encrypted under (for rotation). */
export const fieldKeyId = (stored: string): string => stored.split(".")[0] ?? "";

/** Keyed lookup index of a provider reference: HMAC, so the plaintext id is never stored. */
export function lookupIndex(keyring: DataKeyring, kind: string, value: string): Promise<string> {
  return hmacSha256Hex(keyring.indexSecret, `${kind}:${value}`);
}

/**
 * Every index a stored reference may have: under DATA_INDEX_KEY and, while a re-index runs, under
 * DATA_INDEX_KEY_PREVIOUS. Lookups match any of them (`index IN (...)`).
 */
export async function lookupIndexes(keyring: DataKeyring, kind: string, value: string): Promise<string[]> {
  const current = await lookupIndex(keyring, kind, value);
  return keyring.previousIndexSecret ? [current, await hmacSha256Hex(keyring.previousIndexSecret, `${kind}:${value}`)] : [current];
}
