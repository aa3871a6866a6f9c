import { toHex, utf8 } from "./encoding";
import { importKeyring, sha256Hex } from "./crypto";

/** Hash of the (absent) entry before the first of a chain. */
export const GENESIS_HASH = "0".repeat(64);
export const PLATFORM_CHAIN = "platform";
/** The segment of entries written before chains were keyed (unkeyed SHA-256, `keyId` null). */
export const LEGACY_SEGMENT = "legacy";

export type AuditContent = {
  chain: string;
  segment: string;
  seq: number;
  at: number;
  actorSub: string;
  actorRole: string;
  action: string;
  officeId: string | null;
  targetIds: string[];
  outcome: string;
  requestId: string | null;
  details: Record<string, unknown> | null;
  /** The AUDIT_KEY id the entry's MAC is under; null only in the legacy (unkeyed) segment. */
  keyId: string | null;
};

export type AuditEntry = AuditContent & { prevHash: string; hash: string };

/**
 * The audit MAC keys, parsed from `AUDIT_KEY`: `<keyId>:<base64 32 bytes>[,<keyId>:<base64>...]`.
 * The first key MACs new entries; the others only verify entries written under them (rotation).
 */
export type AuditKeyring = { current: string; keys: Map<string, CryptoKey> };

export function loadAuditKeyring(spec: string): Promise<AuditKeyring> {
  return importKeyring(spec, "audit key", { algorithm: { name: "HMAC", hash: "SHA-256" }, usages: ["sign"] });
}

/** JSON with object keys sorted at every depth: the same content always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** HMAC-SHA256 under the keyring's key `keyId`, hex; null when that key is not configured. */
export async function keyedMac(keyring: AuditKeyring, keyId: string, message: string): Promise<string | null> {
  const key = keyring.keys.get(keyId);
  if (!key) return null;
  return toHex(await crypto.subtle.sign("HMAC", key, utf8(message)));
}

/**
 * The MAC of an entry: HMAC-SHA256 (key `keyId`) over the previous entry's MAC and this entry's
 * canonical content, which names its chain, segment, sequence number and key id: an entry copied
 * elsewhere no longer verifies. The legacy segment's unkeyed entries (keyId null) use the former
 * SHA-256; anywhere else an unkeyed entry does not verify. Null when the key is unknown.
 */
export async function entryMac(keyring: AuditKeyring, prevHash: string, content: AuditContent): Promise<string | null> {
  const message = `${prevHash}\n${canonicalJson(content)}`;
  if (content.keyId === null) {
    if (content.segment !== LEGACY_SEGMENT) return null;
    const { keyId: _k, segment: _s, ...legacy } = content;
    return sha256Hex(`${prevHash}\n${canonicalJson(legacy)}`);
  }
  return keyedMac(keyring, content.keyId, message);
}

/**
 * Seals content after `prevHash` under the keyring's current key. The content is first normalised
 * through a JSON round trip, so what is MAC'd is exactly what the database stores and gives back.
 */
export async function seal(keyring: AuditKeyring, prevHash: string, content: Omit<AuditContent, "keyId">): Promise<AuditEntry> {
  const normal = JSON.parse(JSON.stringify({ ...content, keyId: keyring.current })) as AuditContent;
  return { ...normal, prevHash, hash: (await entryMac(keyring, prevHash, normal))! };
}

/** Rebuilds an entry's content from a stored row (the database's extra columns dropped). */
export function contentOf(row: AuditEntry & { id?: number }): AuditContent {
  const { id: _id, prevHash: _p, hash: _h, ...content } = row;
  return { ...content, details: content.details ?? null, keyId: content.keyId ?? null };
}

/**
 * What a chain's single writer recorded about a segment it wrote: where it started (`startPrev`,
 * the MAC it links to), its last head, and when the writer fenced it off after a break, why.
 */
export type SegmentRecord = {
  segment: string;
  startPrev: string;
  seq: number;
  hash: string;
  closedReason: string | null;
  closedAt: number | null;
};

/**
 * The writer's record of its chain: every segment it wrote (oldest first; the last is open) and
 * the head of a batch it has sent but not yet seen committed (`pending`).
 */
export type ChainAnchor = { segments: SegmentRecord[]; pending: { segment: string; seq: number; hash: string } | null };

export type BrokenEntry = { id?: number; segment: string; seq: number; reason: string };
export type ChainVerdict = {
  ok: boolean;
  entries: number;
  /** The head recorded by the writer, null before the first entry. */
  head: { segment: string; seq: number; hash: string } | null;
  segments: number;
  /** Segments found in the database that the writer has no record of (MAC-checked, not anchored). */
  unanchoredSegments: number;
  /** Breaks the writer found and fenced off: the segment it closed, its recorded head and why. */
  fences: { segment: string; seq: number; reason: string; at: number | null }[];
  /** The first entry that does not verify, when `ok` is false. */
  firstBroken?: BrokenEntry;
};

type SegmentState = {
  segment: string;
  /** The writer's record when verification began. */
  before: SegmentRecord | undefined;
  expectedSeq: number;
  prev: string | null;
  last: { seq: number; hash: string; id?: number } | null;
  broken: BrokenEntry | null;
  /** Entries beyond the head recorded when verification began (appends since, or intruders). */
  later: Map<number, { id?: number; hash: string }>;
};

/**
 * Walks a chain fed page by page in (segment, seq) order. In each segment, sequence numbers must
 * run 1, 2, 3… without gaps (a deleted or reordered entry), each `prevHash` must be the MAC of the
 * entry before (an inserted or reordered entry; a segment the writer recorded must start where it
 * recorded), and each MAC must match the entry's content under a configured key (an edited or
 * forged entry: without the key nobody can compute one).
 *
 * Each segment is then compared with its writer's record, taken twice: `before` (asked before
 * the entries were read) and `after` (asked once they all were). Every entry up to the head
 * recorded before must be there, and the entry at that head must carry the recorded MAC (a
 * truncated or rewritten tail). No entry may lie beyond the head recorded after, or the batch then
 * in flight (an entry the writer never wrote). Segments the writer has no record of must verify on
 * their own; an unkeyed legacy segment must be anchored. A break is the verdict, never a throw.
 */
export class ChainVerifier {
  readonly #keyring: AuditKeyring;
  readonly #before: Map<string, SegmentRecord>;
  #count = 0;
  #current: SegmentState | null = null;
  #done: SegmentState[] = [];

  constructor(keyring: AuditKeyring, before: ChainAnchor) {
    this.#keyring = keyring;
    this.#before = new Map(before.segments.map((s) => [s.segment, s]));
  }

  async push(entries: (AuditEntry & { id?: number })[]): Promise<void> {
    for (const e of entries) {
      this.#count++;
      if (!this.#current || this.#current.segment !== e.segment) {
        if (this.#current) this.#done.push(this.#current);
        const before = this.#before.get(e.segment);
        this.#current = { segment: e.segment, before, expectedSeq: 1, prev: before ? before.startPrev : null, last: null, broken: null, later: new Map() };
      }
      const s = this.#current;
      if (s.broken) continue;
      const fail = (reason: string) => {
        s.broken = { id: e.id, segment: e.segment, seq: e.seq, reason };
      };
      if (e.seq !== s.expectedSeq) {
        fail(e.seq > s.expectedSeq ? `entry ${s.expectedSeq} is missing` : "entry out of order");
        continue;
      }
      if (s.prev !== null && e.prevHash !== s.prev) {
        fail("previous-hash link broken");
        continue;
      }
      const content = contentOf(e);
      if (content.keyId !== null && !this.#keyring.keys.has(content.keyId)) {
        fail(`MAC key ${content.keyId} is not configured (keep rotated-out keys in AUDIT_KEY while their entries must verify)`);
        continue;
      }
      if ((await entryMac(this.#keyring, e.prevHash, content)) !== e.hash) {
        fail(content.keyId === null && e.segment !== LEGACY_SEGMENT ? "unkeyed entry outside the legacy segment" : "MAC does not match the entry's content");
        continue;
      }
      if (s.before && e.seq === s.before.seq && e.hash !== s.before.hash) {
        fail("head does not match the recorded head");
        continue;
      }
      if (e.seq > (s.before?.seq ?? 0)) s.later.set(e.seq, { id: e.id, hash: e.hash });
      s.prev = e.hash;
      s.expectedSeq++;
      s.last = { seq: e.seq, hash: e.hash, id: e.id };
    }
  }

  finish(after: ChainAnchor): ChainVerdict {
    const states = [...this.#done, ...(this.#current ? [this.#current] : [])];
    const records = new Map(after.segments.map((s) => [s.segment, s]));
    const seen = new Set(states.map((s) => s.segment));
    const breaks: BrokenEntry[] = [];
    for (const s of states) {
      const r = records.get(s.segment);
      const lastSeq = s.last?.seq ?? 0;
      if (!r) {
        if (s.broken) breaks.push(s.broken);
        else if (s.segment === LEGACY_SEGMENT) breaks.push({ segment: s.segment, seq: 1, reason: "unkeyed legacy entries its writer has no record of" });
        continue;
      }
      // Entries beyond what the writer has recorded or has in flight were not written by it.
      const pending = after.pending && after.pending.segment === s.segment ? after.pending : null;
      const limit = Math.max(r.seq, pending?.seq ?? 0);
      if (lastSeq > limit) {
        const beyond = s.later.get(limit + 1);
        breaks.push({ id: beyond?.id, segment: s.segment, seq: limit + 1, reason: `entry beyond the head its writer recorded (${r.seq}): not written by the chain's writer` });
        continue;
      }
      if (s.broken) {
        const b = s.broken;
        breaks.push(b.seq > limit ? { ...b, reason: `entry beyond the head its writer recorded (${r.seq}), not written by it: ${b.reason}` } : b);
        continue;
      }
      const minimum = s.before?.seq ?? 0;
      if (lastSeq < minimum) {
        breaks.push({ segment: s.segment, seq: lastSeq + 1, reason: `entries after ${lastSeq} are missing (head is ${minimum})` });
        continue;
      }
      const atHead = s.later.get(r.seq);
      if (atHead && atHead.hash !== r.hash) breaks.push({ id: atHead.id, segment: s.segment, seq: r.seq, reason: "head does not match the recorded head" });
      else if (pending && lastSeq === pending.seq && s.later.get(pending.seq)?.hash !== pending.hash)
        breaks.push({ id: s.last?.id, segment: s.segment, seq: lastSeq, reason: "head does not match the recorded head" });
    }
    for (const r of this.#before.values()) {
      if (!seen.has(r.segment) && r.seq > 0) breaks.push({ segment: r.segment, seq: 1, reason: `entries after 0 are missing (head is ${r.seq})` });
    }
    const written = after.segments.filter((r) => r.seq > 0);
    const last = written.at(-1);
    const verdict: ChainVerdict = {
      ok: breaks.length === 0,
      entries: this.#count,
      head: last ? { segment: last.segment, seq: last.seq, hash: last.hash } : null,
      segments: new Set([...seen, ...written.map((r) => r.segment)]).size,
      unanchoredSegments: states.filter((s) => !records.has(s.segment)).length,
      fences: after.segments.filter((r) => r.closedReason !== null).map((r) => ({ segment: r.segment, seq: r.seq, reason: r.closedReason!, at: r.closedAt })),
    };
    if (breaks[0]) verdict.firstBroken = breaks[0];
    return verdict;
  }
}

/**
 * A checkpoint of a chain: its writer's head, the entries it has written and the time, MAC'd with
 * the current AUDIT_KEY. Logged daily: a copy kept outside the database proves a later truncation
 * (a head older than a checkpoint's, or fewer entries).
 */
export type AuditCheckpoint = { chain: string; segment: string; seq: number; hash: string; count: number; at: number; keyId: string; mac: string };

export async function checkpointMac(keyring: AuditKeyring, c: Omit<AuditCheckpoint, "mac">): Promise<string> {
  return (await keyedMac(keyring, c.keyId, `checkpoint\n${canonicalJson(c)}`))!;
}
