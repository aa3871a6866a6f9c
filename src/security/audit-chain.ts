import { sha256Hex } from "./crypto";

/** Hash of the (absent) entry before the first of a chain. */
export const GENESIS_HASH = "0".repeat(64);
export const PLATFORM_CHAIN = "platform";

export type AuditContent = {
  chain: string;
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
};

export type AuditEntry = AuditContent & { prevHash: string; hash: string };

/** JSON with object keys sorted at every depth: the same content always gives the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** SHA-256 over the previous entry's hash and this entry's canonical content. */
export function entryHash(prevHash: string, content: AuditContent): Promise<string> {
  return sha256Hex(`${prevHash}\n${canonicalJson(content)}`);
}

/**
 * Seals content after `prevHash`. The content is first normalised through a JSON round trip, so
 * what is hashed is exactly what the database stores and gives back (no Dates, no undefined).
 */
export async function seal(prevHash: string, content: AuditContent): Promise<AuditEntry> {
  const normal = JSON.parse(JSON.stringify(content)) as AuditContent;
  return { ...normal, prevHash, hash: await entryHash(prevHash, normal) };
}

/**
 * Walks a chain in `seq` order, fed page by page (memory stays bounded): sequence numbers must run
 * 1, 2, 3… without gaps (a deleted or reordered entry), each `prevHash` must be the hash of the
 * entry before (a reordered or inserted entry), and each `hash` must match the entry's content (an
 * edited entry). `finish(anchor)` compares the end with the head recorded by the chain's single
 * writer, which exposes a truncated tail.
 */
export class ChainVerifier {
  #prev = GENESIS_HASH;
  #expectedSeq = 1;
  #count = 0;
  #last: { seq: number; hash: string; id?: number } | null = null;
  #broken: { id?: number; seq: number; reason: string } | null = null;

  get broken() {
    return this.#broken !== null;
  }

  async push(entries: (AuditEntry & { id?: number })[]): Promise<void> {
    for (const e of entries) {
      if (this.#broken) return;
      this.#count++;
      const fail = (reason: string) => {
        this.#broken = { id: e.id, seq: e.seq, reason };
      };
      if (e.seq !== this.#expectedSeq) return fail(e.seq > this.#expectedSeq ? `entry ${this.#expectedSeq} is missing` : "entry out of order");
      if (e.prevHash !== this.#prev) return fail("previous-hash link broken");
      const { prevHash: _p, hash: _h, id: _i, ...content } = e;
      if ((await entryHash(e.prevHash, content)) !== e.hash) return fail("content does not match its hash");
      this.#prev = e.hash;
      this.#expectedSeq++;
      this.#last = { seq: e.seq, hash: e.hash, id: e.id };
    }
  }

  finish(anchor?: { seq: number; hash: string } | null): ChainVerdict {
    if (this.#broken) return { ok: false, entries: this.#count, firstBroken: this.#broken };
    const last = this.#last;
    if (anchor && (!last || last.seq < anchor.seq)) {
      const seq = last?.seq ?? 0;
      return { ok: false, entries: this.#count, firstBroken: { seq: seq + 1, reason: `entries after ${seq} are missing (head is ${anchor.seq})` } };
    }
    if (anchor && last && last.seq === anchor.seq && last.hash !== anchor.hash) {
      return { ok: false, entries: this.#count, firstBroken: { id: last.id, seq: last.seq, reason: "head does not match the recorded head" } };
    }
    return { ok: true, entries: this.#count, head: last ? { seq: last.seq, hash: last.hash } : null };
  }
}

export type ChainVerdict =
  | { ok: true; entries: number; head: { seq: number; hash: string } | null }
  | { ok: false; entries: number; firstBroken: { id?: number; seq: number; reason: string } };
