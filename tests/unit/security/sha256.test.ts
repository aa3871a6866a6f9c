import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hmacSha256HexSync, sha256HexSync } from "../../../src/security/sha256";

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
const utf8 = (s: string) => new TextEncoder().encode(s);
const webSha256 = async (m: string | Uint8Array) => hex(await crypto.subtle.digest("SHA-256", typeof m === "string" ? utf8(m) : m));
async function webHmac(secret: string | Uint8Array, message: string | Uint8Array) {
  const key = await crypto.subtle.importKey("raw", typeof secret === "string" ? utf8(secret) : secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, typeof message === "string" ? utf8(message) : message));
}

describe("synchronous SHA-256 and HMAC-SHA256 (src/security/sha256.ts)", () => {
  it("gives the FIPS 180-4 digests", () => {
    expect(sha256HexSync("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256HexSync("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256HexSync("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).toBe("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    expect(sha256HexSync("a".repeat(1_000_000))).toBe("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  });

  it("gives the RFC 4231 HMAC-SHA256 vector of an ASCII key (test case 2)", () => {
    expect(hmacSha256HexSync("Jefe", "what do ya want for nothing?")).toBe("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  });

  it("matches WebCrypto for messages and secrets of every length around the block boundaries", async () => {
    for (let n = 0; n <= 200; n++) {
      const message = "m".repeat(n);
      expect(sha256HexSync(message)).toBe(await webSha256(message));
      expect(hmacSha256HexSync("office-secret", message)).toBe(await webHmac("office-secret", message));
    }
    for (let k = 1; k <= 141; k += 7) {
      const secret = "k".repeat(k);
      expect(hmacSha256HexSync(secret, "off_1:patient-42")).toBe(await webHmac(secret, "off_1:patient-42"));
    }
  });

  it("matches WebCrypto on messages larger than its scratch buffer (a webhook body, a bulk request's hash)", async () => {
    for (const n of [1023, 1024, 1025, 4096, 65_537, 1_048_576]) {
      const message = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
      expect(sha256HexSync(message)).toBe(await webSha256(message));
      expect(hmacSha256HexSync("whsec_test", message)).toBe(await webHmac("whsec_test", message));
    }
    // A small message after a large one: the grown buffer's leftovers never leak into the digest.
    expect(sha256HexSync("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("matches WebCrypto on arbitrary Unicode strings and bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "grapheme", maxLength: 120 }), fc.string({ unit: "binary", minLength: 1, maxLength: 90 }), fc.uint8Array({ maxLength: 300 }), async (message, secret, bytes) => {
        expect(sha256HexSync(message)).toBe(await webSha256(message));
        expect(sha256HexSync(bytes)).toBe(await webSha256(bytes));
        expect(hmacSha256HexSync(secret, message)).toBe(await webHmac(secret, message));
      }),
      { numRuns: 500 },
    );
  });
});
