/**
 * Idempotency records of one office, in its Durable Object's own storage: the key's hash, the
 * request's hash and the first answer. A repeated key is answered from here without touching the
 * database; the database's unique index on the key's hash remains the last line of defence.
 */
import * as clock from "../clock";
export type StoredAnswer = { requestHash: string; response: unknown };

export class IdempotencyStore {
  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS idempotency (key_hash TEXT PRIMARY KEY, request_hash TEXT NOT NULL, response TEXT NOT NULL, created_at INTEGER NOT NULL)",
    );
  }

  get(keyHash: string): StoredAnswer | null {
    const row = this.storage.sql
      .exec<{ request_hash: string; response: string }>("SELECT request_hash, response FROM idempotency WHERE key_hash = ?", keyHash)
      .toArray()[0];
    return row ? { requestHash: row.request_hash, response: JSON.parse(row.response) } : null;
  }

  /** The stored answers of many keys at once (one query: a bulk request's thousand keys). */
  getMany(keyHashes: readonly string[]): Map<string, StoredAnswer> {
    const found = new Map<string, StoredAnswer>();
    if (keyHashes.length === 0) return found;
    const rows = this.storage.sql
      .exec<{ key_hash: string; request_hash: string; response: string }>(
        "SELECT key_hash, request_hash, response FROM idempotency WHERE key_hash IN (SELECT value FROM json_each(?))",
        JSON.stringify(keyHashes),
      )
      .toArray();
    for (const row of rows) found.set(row.key_hash, { requestHash: row.request_hash, response: JSON.parse(row.response) });
    return found;
  }

  /** Stores many first answers at once (one statement). */
  putMany(entries: readonly (readonly [string, StoredAnswer])[]): void {
    if (entries.length === 0) return;
    this.storage.sql.exec(
      "INSERT OR IGNORE INTO idempotency (key_hash, request_hash, response, created_at) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), ? FROM json_each(?)",
      clock.now(),
      JSON.stringify(entries.map(([key, a]) => [key, a.requestHash, JSON.stringify(a.response)])),
    );
  }

  put(keyHash: string, answer: StoredAnswer): void {
    this.storage.sql.exec(
      "INSERT OR IGNORE INTO idempotency (key_hash, request_hash, response, created_at) VALUES (?, ?, ?, ?)",
      keyHash,
      answer.requestHash,
      JSON.stringify(answer.response),
      clock.now(),
    );
  }

  /**
   * Forgets the stored answers of patient events (those that name a patient pseudonym): after a
   * patient key rotation their request hashes and pseudonyms are stale, and the database, where
   * the rotation rewrote them, answers replays instead.
   */
  forgetPatientEvents(): void {
    // A patient event's answer is kept whole (with its pseudonym) or compact (a JSON array, src/office/patient-batch.ts).
    this.storage.sql.exec("DELETE FROM idempotency WHERE json_extract(response, '$.patientKey') IS NOT NULL OR json_type(response) = 'array'");
  }
}
