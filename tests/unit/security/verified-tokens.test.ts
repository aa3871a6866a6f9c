import { describe, expect, it } from "vitest";
import { MAX_CLOCK_SKEW_S, TokenError, VerifiedTokens, VERIFIED_TTL_MS, type Claims } from "../../../src/security/jwt";
import { sha256HexSync } from "../../../src/security/sha256";

const T0 = Date.parse("2026-12-01T00:00:00Z");
const claims = (exp: number): Claims => ({ sub: "s", role: "clinical_system", office_ids: [], iss: "i", aud: "a", exp });

/** A verifier that counts its calls and refuses the tokens named in `bad`. */
function verifier(exp: number, bad = new Set<string>()) {
  const calls: string[] = [];
  const verify = async (token: string) => {
    calls.push(token);
    if (bad.has(token)) throw new TokenError("bad signature");
    return claims(exp);
  };
  return { calls, verify };
}

describe("VerifiedTokens (a token verified lately is not verified again, its times are)", () => {
  it("verifies a token once within the TTL, and again after it; the rate limit's key is the token's SHA-256, never the token", async () => {
    const v = verifier(T0 / 1000 + 3600);
    const tokens = new VerifiedTokens(v.verify);
    const first = await tokens.get("tok-a", T0);
    expect(first.limitKey).toBe(`tok:${sha256HexSync("tok-a")}`);
    expect(first.limitKey).not.toContain("tok-a");
    expect((await tokens.get("tok-a", T0 + VERIFIED_TTL_MS - 1)).claims).toEqual(first.claims);
    expect(v.calls).toEqual(["tok-a"]);
    await tokens.get("tok-a", T0 + VERIFIED_TTL_MS);
    expect(v.calls).toEqual(["tok-a", "tok-a"]);
    // Another token is verified on its own.
    await tokens.get("tok-b", T0);
    expect(v.calls).toHaveLength(3);
  });

  it("refuses a kept token once it has expired, without waiting for the TTL", async () => {
    // Expired 30 s ago: still inside the clock skew allowed when verified.
    const exp = T0 / 1000 - 30;
    const v = verifier(exp);
    const tokens = new VerifiedTokens(v.verify);
    await expect(tokens.get("tok", T0)).resolves.toBeTruthy();
    // 31 s later the skew is spent: the kept claims are refused, the verifier is not asked again.
    await expect(tokens.get("tok", T0 + (MAX_CLOCK_SKEW_S - 30 + 1) * 1000)).rejects.toThrow(/token expired/);
    expect(v.calls).toHaveLength(1);
  });

  it("keeps nothing of a refused token, and a clock that went back verifies afresh", async () => {
    const v = verifier(T0 / 1000 + 3600, new Set(["forged"]));
    const tokens = new VerifiedTokens(v.verify);
    await expect(tokens.get("forged", T0)).rejects.toThrow(/bad signature/);
    await expect(tokens.get("forged", T0 + 1)).rejects.toThrow(/bad signature/);
    expect(v.calls).toEqual(["forged", "forged"]);
    await tokens.get("ok", T0);
    await tokens.get("ok", T0 - 1);
    expect(v.calls.filter((t) => t === "ok")).toHaveLength(2);
  });

  it("drops what it keeps when full (bounded memory)", async () => {
    const v = verifier(T0 / 1000 + 3600);
    const tokens = new VerifiedTokens(v.verify, VERIFIED_TTL_MS, 3);
    for (const t of ["a", "b", "c"]) await tokens.get(t, T0);
    await tokens.get("a", T0);
    expect(v.calls).toHaveLength(3);
    await tokens.get("d", T0); // full: everything dropped, d kept
    await tokens.get("a", T0);
    expect(v.calls).toEqual(["a", "b", "c", "d", "a"]);
  });
});
