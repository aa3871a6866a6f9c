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
    this.storage.sql.exec("DELETE FROM idempotency WHERE json_extract(response, '$.patientKey') IS NOT NULL");
  }
}
