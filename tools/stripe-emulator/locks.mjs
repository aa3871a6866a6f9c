// Object locks. Stripe locks an object while a request (or a Stripe process) writes it; a
// concurrent write to the same object that cannot get the lock in time is refused with 429
// `lock_timeout` (docs: rate limits, "Object lock timeouts"; retryable, and not saved for its
// idempotency key). The emulator answers each request at once, so writes never overlap on their
// own: a lock window (ms) makes a write hold its object's lock that long before it executes, so
// an overlapping write to that object is refused. Windows are off unless configured: for every
// write (`lockWindowMs` at start) or for the writes whose path or body contain a rule's text
// (`POST /_emulator/locks`), so a shared emulator stays fast for everyone else.
import { ApiError } from "./common.mjs";

export const lockTimeout = () =>
  new ApiError(
    429,
    {
      type: "invalid_request_error",
      code: "lock_timeout",
      doc_url: "https://stripe.com/docs/error-codes/lock-timeout",
      message:
        "This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request. If you see this error frequently and are making multiple concurrent requests to a single object, make your requests serially or at a lower rate.",
    },
    { store: false },
  );

/** The object a write names in its path (`/v1/invoices/in_…/finalize` → `in_…`), or null (a create). */
export function writtenObject(pathname) {
  const segs = pathname.split("/").filter(Boolean).slice(1);
  return segs.find((s, i) => i >= 1 && /^[a-z]+_[A-Za-z0-9]{6,}$/.test(s)) ?? null;
}

export function createLocks({ windowMs = 0 } = {}) {
  const held = new Set();
  /** { match, windowMs } */
  let rules = [];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  return {
    isHeld: (objectId) => held.has(objectId),
    held: () => [...held],
    /** The window a write holds its object's lock for (0: none). */
    windowFor(haystack) {
      const rule = rules.find((r) => haystack.includes(r.match));
      return rule ? rule.windowMs : windowMs;
    },
    /** Runs `fn` holding `objectId`'s lock, `ms` after taking it. */
    async hold(objectId, ms, fn) {
      held.add(objectId);
      try {
        await sleep(ms);
        return await fn();
      } finally {
        held.delete(objectId);
      }
    },
    addRule({ match, windowMs: ms }) {
      if (typeof match !== "string" || match.length < 4) throw new Error("a lock window needs a match of at least 4 characters");
      const n = Number(ms);
      if (!(Number.isFinite(n) && n > 0 && n <= 60_000)) throw new Error("windowMs must be a number in (0, 60000]");
      rules.push({ match, windowMs: n });
    },
    clearRules(match) {
      rules = match === undefined ? [] : rules.filter((r) => r.match !== match);
    },
    get rules() {
      return rules.map((r) => ({ ...r }));
    },
  };
}
