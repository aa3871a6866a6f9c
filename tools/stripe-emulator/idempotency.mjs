// Idempotent requests (POST with `Idempotency-Key`), as Stripe documents them for API v1: the
// status and body of the first request are saved once the endpoint began executing (500 errors
// included) and replayed for the same key and parameters; a key is pruned 24 hours after its
// first use (emulator clock); validation failures and requests that conflicted with one still in
// flight (409 idempotency_key_in_use) save nothing.
import { createHash } from "node:crypto";

export const KEY_TTL_MS = 24 * 3600 * 1000;

/** Idempotency keys are scoped per API key; only a digest of the key is kept (and persisted). */
export const keyScope = (apiKey) => createHash("sha256").update(String(apiKey)).digest("hex").slice(0, 16);

export function createIdempotency({ state, clock }) {
  /** Keys of requests in flight: scoped key → request id. */
  const inFlight = new Map();

  function prune() {
    for (const [k, rec] of state.idempotency) if (expired(rec)) state.idempotency.delete(k);
  }
  // Records from state files written before records had a time count from the load.
  const expired = (rec) => clock.nowMs() - (rec.at ?? (rec.at = clock.nowMs())) >= KEY_TTL_MS;

  return {
    /** Claims the key for request `requestId`; false when another request holds it. */
    claim(scopedKey, requestId) {
      const holder = inFlight.get(scopedKey);
      if (holder && holder !== requestId) return false;
      inFlight.set(scopedKey, requestId);
      return true;
    },
    release(scopedKey, requestId) {
      if (inFlight.get(scopedKey) === requestId) inFlight.delete(scopedKey);
    },
    /** The saved result of a key still within its 24 hours, else undefined. */
    lookup(scopedKey) {
      const rec = state.idempotency.get(scopedKey);
      if (!rec) return undefined;
      if (expired(rec)) {
        state.idempotency.delete(scopedKey);
        return undefined;
      }
      return rec;
    },
    save(scopedKey, record) {
      state.idempotency.set(scopedKey, { ...record, at: clock.nowMs() });
    },
    prune,
    inFlightCount: () => inFlight.size,
    inUseError: () => ({
      error: {
        type: "invalid_request_error",
        code: "idempotency_key_in_use",
        message: "There is currently another in-progress request using this Idempotent Key (probably because of a timeout). Please try again later.",
      },
    }),
  };
}
