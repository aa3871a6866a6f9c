import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { eventCanonicalJson, eventRequestHashSync } from "../../../src/office/patient-events";
import { canonicalJson } from "../../../src/security/audit-chain";
import { sha256HexSync } from "../../../src/security/sha256";

describe("an event's request hash (src/office/patient-events.ts)", () => {
  it("is the SHA-256 of the event's canonical JSON, written out as canonicalJson writes it", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("activate" as const, "deactivate" as const),
        fc.stringMatching(/^[0-9a-f]{64}$/),
        fc.integer({ min: -8.64e15, max: 8.64e15 }),
        (kind, patientKey, occurredAt) => {
          const canonical = canonicalJson({ kind, patientKey, occurredAt });
          expect(eventCanonicalJson(kind, patientKey, occurredAt)).toBe(canonical);
          expect(eventRequestHashSync(kind, patientKey, occurredAt)).toBe(sha256HexSync(canonical));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("keeps the hashes already stored (a fixed vector)", () => {
    const key = "ab".repeat(32);
    expect(eventCanonicalJson("deactivate", key, 1_767_225_600_000)).toBe(`{"kind":"deactivate","occurredAt":1767225600000,"patientKey":"${key}"}`);
  });
});
