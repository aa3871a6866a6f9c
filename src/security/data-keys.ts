import { sql, type SQL } from "drizzle-orm";
import type { Config } from "../config";
import { loadAuditKeyring, type AuditKeyring } from "./audit-chain";
import { decryptField, encryptField, fieldKeyId, loadKeyring, lookupIndex, type DataKeyring } from "./crypto";

/** `column IN (indexes)`: a lookup by any of a reference's current indexes (lookupIndexes). */
export function indexIn(column: SQL | { name: string } | string, indexes: readonly string[]): SQL {
  const col = typeof column === "string" ? sql.raw(column) : column;
  return sql`${col} IN (${sql.join(indexes.map((i) => sql`${i}`), sql`, `)})`;
}

const keyrings = new WeakMap<Config, Promise<DataKeyring>>();
const auditKeyrings = new WeakMap<Config, Promise<AuditKeyring>>();

/** The audit MAC keyring of this configuration (AUDIT_KEY; imported once per isolate and config). */
export function auditKeyring(config: Pick<Config, "AUDIT_KEY">): Promise<AuditKeyring> {
  let ring = auditKeyrings.get(config as Config);
  if (!ring) {
    ring = loadAuditKeyring(config.AUDIT_KEY);
    auditKeyrings.set(config as Config, ring);
  }
  return ring;
}

/** The data keyring of this configuration (imported once per isolate and config). */
export function dataKeyring(config: Config): Promise<DataKeyring> {
  let ring = keyrings.get(config);
  if (!ring) {
    ring = loadKeyring(config.DATA_ENCRYPTION_KEY, config.DATA_INDEX_KEY, config.DATA_INDEX_KEY_PREVIOUS);
    keyrings.set(config, ring);
  }
  return ring;
}

/**
 * Every column that holds a payment-provider reference encrypted at rest, with its lookup index.
 * The row id is bound into the ciphertext (AES-GCM additional data), so a value copied to another
 * row or column does not decrypt.
 */
export const encryptedColumns = [
  { table: "offices", id: "id", column: "stripe_customer_ref", index: "stripe_customer_index", kind: "stripe_customer" },
  { table: "invoices", id: "id", column: "stripe_invoice_ref", index: "stripe_invoice_index", kind: "stripe_invoice" },
  { table: "refunds", id: "id", column: "stripe_refund_ref", index: "stripe_refund_index", kind: "stripe_refund" },
  // Bearer links, never looked up: no index.
  { table: "invoices", id: "id", column: "stripe_documents_ref", index: null, kind: "stripe_invoice_documents" },
  { table: "credit_notes", id: "id", column: "stripe_credit_note_ref", index: "stripe_credit_note_index", kind: "stripe_credit_note" },
] as const;

export type EncryptedColumn = (typeof encryptedColumns)[number];

/** The encrypted columns looked up by a keyed index (DATA_INDEX_KEY). */
export type IndexedColumn = Extract<EncryptedColumn, { index: string }>;
export const indexedColumns = encryptedColumns.filter((c): c is IndexedColumn => c.index !== null);

const context = (col: EncryptedColumn, rowId: string) => `${col.table}.${col.column}:${rowId}`;

/** Encrypts a provider reference for a row and computes its lookup index. */
export async function sealReference(ring: DataKeyring, col: EncryptedColumn, rowId: string, plaintext: string) {
  return {
    ref: await encryptField(ring, plaintext, context(col, rowId)),
    index: await lookupIndex(ring, col.kind, plaintext),
  };
}

/** Encrypts a value for a row of a column that is never looked up (no index: e.g. document links). */
export function sealValue(ring: DataKeyring, col: EncryptedColumn, rowId: string, plaintext: string): Promise<string> {
  return encryptField(ring, plaintext, context(col, rowId));
}

export function openReference(ring: DataKeyring, col: EncryptedColumn, rowId: string, stored: string): Promise<string> {
  return decryptField(ring, stored, context(col, rowId));
}

/** Re-encrypts a stored value under the current key (null when it already is). */
export async function reencrypt(ring: DataKeyring, col: EncryptedColumn, rowId: string, stored: string): Promise<string | null> {
  if (fieldKeyId(stored) === ring.current) return null;
  return sealValue(ring, col, rowId, await openReference(ring, col, rowId, stored));
}

/** The index a stored value should have under DATA_INDEX_KEY (null when it already has it). */
export async function reindex(ring: DataKeyring, col: IndexedColumn, rowId: string, stored: string, index: string | null): Promise<string | null> {
  const wanted = await lookupIndex(ring, col.kind, await openReference(ring, col, rowId, stored));
  return wanted === index ? null : wanted;
}
