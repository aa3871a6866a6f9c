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

export type ChainVerdict =
  | { ok: true; entries: number; head: { seq: number; hash: string } | null }
  | { ok: false; entries: number; firstBroken: { id?: number; seq: number; reason: string } };

/**
 * Walks a chain in `seq` order: sequence numbers must run 1, 2, 3… without gaps (a deleted or
 * reordered entry), each `prevHash` must be the hash of the entry before (a reordered or inserted
 * entry), and each `hash` must match the entry's content (an edited entry). `anchor` is the head
 * recorded by the chain's single writer, which exposes a truncated tail.
 */
export async function verifyChain(
  entries: (AuditEntry & { id?: number })[],
  anchor?: { seq: number; hash: string } | null,
): Promise<ChainVerdict> {
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  for (const e of entries) {
    const broken = (reason: string): ChainVerdict => ({ ok: false, entries: entries.length, firstBroken: { id: e.id, seq: e.seq, reason } });
    if (e.seq !== expectedSeq) return broken(e.seq > expectedSeq ? `entry ${expectedSeq} is missing` : "entry out of order");
    if (e.prevHash !== prev) return broken("previous-hash link broken");
    const { prevHash: _p, hash: _h, id: _i, ...content } = e;
    if ((await entryHash(e.prevHash, content)) !== e.hash) return broken("content does not match its hash");
    prev = e.hash;
    expectedSeq++;
  }
  const last = entries.at(-1);
  if (anchor && (!last || last.seq < anchor.seq)) {
    return { ok: false, entries: entries.length, firstBroken: { seq: (last?.seq ?? 0) + 1, reason: `entries after ${last?.seq ?? 0} are missing (head is ${anchor.seq})` } };
  }
  if (anchor && last && last.seq === anchor.seq && last.hash !== anchor.hash) {
    return { ok: false, entries: entries.length, firstBroken: { id: last.id, seq: last.seq, reason: "head does not match the recorded head" } };
  }
  return { ok: true, entries: entries.length, head: last ? { seq: last.seq, hash: last.hash } : null };
}
