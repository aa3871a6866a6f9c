/**
 * SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104) computed synchronously in the isolate, for the
 * hot path of patient events: a bulk request of 1,000 events needs 2,000 HMACs at the route and
 * 1,000 SHA-256 digests in the office's object. Through WebCrypto each is its own asynchronous
 * call (a promise, a copy in and out, a job on the event loop); here an HMAC of a short message is
 * two compressions, its key's inner and outer pads being absorbed once per secret and kept.
 * Outputs are byte-for-byte those of crypto.subtle (tests/unit/sha256.test.ts checks them against
 * it and against the RFC 4231 vectors). No branch or table index depends on the data.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
  0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
  0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const W = new Int32Array(64);

/** One compression of the 64-byte block at `off` of `buf` into `state`. */
function compress(state: Int32Array, buf: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++, off += 4) W[i] = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
  for (let i = 16; i < 64; i++) {
    const a = W[i - 15]!;
    const b = W[i - 2]!;
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!, e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(1024);

/**
 * Hashes `message` (UTF-8) into `state`, which has already absorbed `prefixBytes` (0, or one
 * block for an HMAC pad), and pads and finishes it. The message is encoded into a scratch buffer.
 */
function finish(state: Int32Array, prefixBytes: number, message: string | Uint8Array): void {
  const maxBytes = typeof message === "string" ? message.length * 3 : message.length;
  if (scratch.length < maxBytes + 72) scratch = new Uint8Array(Math.max(scratch.length * 2, maxBytes + 72));
  const buf = scratch;
  let n: number;
  if (typeof message === "string") n = encoder.encodeInto(message, buf).written;
  else {
    buf.set(message);
    n = message.length;
  }
  const blocks = (n + 9 + 63) >>> 6;
  const end = blocks << 6;
  buf[n] = 0x80;
  buf.fill(0, n + 1, end - 8);
  const bits = (prefixBytes + n) * 8;
  const hi = Math.floor(bits / 0x1_0000_0000);
  buf[end - 8] = hi >>> 24;
  buf[end - 7] = hi >>> 16;
  buf[end - 6] = hi >>> 8;
  buf[end - 5] = hi;
  buf[end - 4] = bits >>> 24;
  buf[end - 3] = bits >>> 16;
  buf[end - 2] = bits >>> 8;
  buf[end - 1] = bits;
  for (let off = 0; off < end; off += 64) compress(state, buf, off);
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function stateHex(state: Int32Array): string {
  let out = "";
  for (let i = 0; i < 8; i++) {
    const w = state[i]!;
    out += HEX[w >>> 24]! + HEX[(w >>> 16) & 0xff]! + HEX[(w >>> 8) & 0xff]! + HEX[w & 0xff]!;
  }
  return out;
}

function stateBytes(state: Int32Array, out: Uint8Array): void {
  for (let i = 0; i < 8; i++) {
    const w = state[i]!;
    out[i * 4] = w >>> 24;
    out[i * 4 + 1] = w >>> 16;
    out[i * 4 + 2] = w >>> 8;
    out[i * 4 + 3] = w;
  }
}

const work = new Int32Array(8);

/** SHA-256 of `message` (a string is hashed as UTF-8), hex. */
export function sha256HexSync(message: string | Uint8Array): string {
  work.set(IV);
  finish(work, 0, message);
  return stateHex(work);
}

/** A secret's HMAC-SHA256 pads, each absorbed into SHA-256's state once. */
type Pads = { inner: Int32Array; outer: Int32Array };
const padsBySecret = new Map<string, Pads>();

function pads(secret: string): Pads {
  const kept = padsBySecret.get(secret);
  if (kept) return kept;
  let key = encoder.encode(secret);
  if (key.length > 64) {
    work.set(IV);
    finish(work, 0, key);
    key = new Uint8Array(32);
    stateBytes(work, key);
  }
  const block = new Uint8Array(64);
  const inner = new Int32Array(IV);
  const outer = new Int32Array(IV);
  for (let i = 0; i < 64; i++) block[i] = (key[i] ?? 0) ^ 0x36;
  compress(inner, block, 0);
  for (let i = 0; i < 64; i++) block[i] = (key[i] ?? 0) ^ 0x5c;
  compress(outer, block, 0);
  block.fill(0);
  if (padsBySecret.size >= 16) padsBySecret.clear();
  const made = { inner, outer };
  padsBySecret.set(secret, made);
  return made;
}

const innerDigest = new Uint8Array(32);

/** HMAC-SHA256 of `message` (UTF-8) under `secret` (UTF-8, as WebCrypto imports a raw key), hex. */
export function hmacSha256HexSync(secret: string, message: string): string {
  const { inner, outer } = pads(secret);
  work.set(inner);
  finish(work, 64, message);
  stateBytes(work, innerDigest);
  work.set(outer);
  finish(work, 64, innerDigest);
  return stateHex(work);
}
