// Does the local Stripe emulator still have the Stripe objects the database names? (`npm run dev`
// checks at start: the emulator keeps its state under <data>/stripe, and someone may have removed
// it by hand while keeping the database.) The Stripe ids are encrypted at rest; they are opened
// here with .dev.vars' DATA_ENCRYPTION_KEY, as src/security/crypto.ts does (AES-256-GCM, the row
// bound in as additional data), and looked up through the emulator's /_emulator/missing.
import { webcrypto } from "node:crypto";
import { createClient } from "@libsql/client";

const subtle = webcrypto.subtle;

/** The columns holding Stripe ids, as src/security/data-keys.ts's `encryptedColumns`. */
export const STRIPE_REFERENCE_COLUMNS = [
  { table: "offices", id: "id", column: "stripe_customer_ref" },
  { table: "invoices", id: "id", column: "stripe_invoice_ref" },
  { table: "refunds", id: "id", column: "stripe_refund_ref" },
  { table: "credit_notes", id: "id", column: "stripe_credit_note_ref" },
];

const fromBase64Url = (text) => (/^[A-Za-z0-9_\-+/]*={0,2}$/.test(text) ? Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64") : null);

/**
 * DATA_ENCRYPTION_KEY (`<keyId>:<base64 32 bytes>[,…]`) → key id → AES-GCM key.
 * @param {string} spec @returns {Promise<Map<string, CryptoKey>>}
 */
export async function loadDataKeys(spec) {
  const keys = new Map();
  for (const part of String(spec ?? "").split(",")) {
    const [id, b64] = part.trim().split(":");
    const raw = b64 ? fromBase64Url(b64) : null;
    if (!id || !raw || raw.length !== 32) throw new Error("malformed DATA_ENCRYPTION_KEY");
    keys.set(id, await subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]));
  }
  return keys;
}

/**
 * Opens a stored `<keyId>.<iv>.<ciphertext>` value of a row; null when it cannot be.
 * @param {Map<string, CryptoKey>} keys @param {{ table: string, column: string }} col @param {string} rowId @param {string} stored
 */
export async function openReference(keys, col, rowId, stored) {
  const [keyId, ivText, ctText] = String(stored).split(".");
  const key = keyId ? keys.get(keyId) : undefined;
  const iv = ivText ? fromBase64Url(ivText) : null;
  const ct = ctText ? fromBase64Url(ctText) : null;
  if (!key || !iv || !ct) return null;
  try {
    const additionalData = new TextEncoder().encode(`${col.table}.${col.column}:${rowId}`);
    return new TextDecoder().decode(await subtle.decrypt({ name: "AES-GCM", iv, additionalData }, key, ct));
  } catch {
    return null;
  }
}

/**
 * The Stripe ids the database names: `ids` (opened), `unreadable` (no key opens them), `total`.
 * @param {{ dbUrl: string, authToken?: string, encryptionKey?: string }} opts
 */
export async function storedStripeIds({ dbUrl, authToken, encryptionKey }) {
  let keys = new Map();
  try {
    keys = await loadDataKeys(encryptionKey);
  } catch {
    // without a usable key every stored value counts as unreadable
  }
  const client = createClient({ url: dbUrl, authToken: authToken || undefined });
  const ids = [];
  let unreadable = 0;
  try {
    for (const col of STRIPE_REFERENCE_COLUMNS) {
      const rs = await client.execute(`SELECT ${col.id} AS id, ${col.column} AS ref FROM ${col.table} WHERE ${col.column} IS NOT NULL`);
      for (const row of rs.rows) {
        const id = await openReference(keys, col, String(row.id), String(row.ref));
        if (id) ids.push(id);
        else unreadable++;
      }
    }
  } finally {
    client.close();
  }
  return { ids, unreadable, total: ids.length + unreadable };
}

/**
 * Which ids the emulator does not have, and how many objects it holds.
 * @param {string} emulatorUrl @param {string[]} ids
 * @returns {Promise<{ missing: string[], counts: Record<string, number> }>}
 */
export async function emulatorMissing(emulatorUrl, ids) {
  const res = await fetch(new URL("/_emulator/missing", emulatorUrl), { method: "POST", body: JSON.stringify({ ids }) });
  if (!res.ok) throw new Error(`the Stripe emulator answered ${res.status} to /_emulator/missing`);
  const body = await res.json();
  return { missing: body.missing ?? [], counts: body.counts ?? {} };
}

/** The one line `npm run dev` prints. @param {number} n @param {string} stateDir @param {string} freshCommand */
export function stripeStateMessage(n, stateDir, freshCommand) {
  return `dev: the database names ${n} Stripe object(s) the local Stripe emulator does not have (its state under ${stateDir} was removed?); \`${freshCommand}\` starts both over`;
}

/**
 * Compares the database with the emulator. `missing`: how many Stripe objects the database names
 * that the emulator lacks; `message`: the line to print, or null when they agree. Values no key
 * opens are not compared, except that an emulator holding nothing at all lacks every one.
 * @param {{ dbUrl: string, authToken?: string, encryptionKey?: string, emulatorUrl: string, stateDir?: string, freshCommand?: string }} opts
 */
export async function checkStripeState({ dbUrl, authToken, encryptionKey, emulatorUrl, stateDir = ".data/stripe", freshCommand = "npm run dev -- --fresh" }) {
  const stored = await storedStripeIds({ dbUrl, authToken, encryptionKey });
  if (stored.total === 0) return { referenced: 0, missing: 0, unreadable: 0, message: null };
  const { missing, counts } = await emulatorMissing(emulatorUrl, stored.ids);
  const emulatorEmpty = Object.values(counts).every((n) => n === 0);
  const n = missing.length + (emulatorEmpty ? stored.unreadable : 0);
  return { referenced: stored.total, missing: n, unreadable: stored.unreadable, message: n > 0 ? stripeStateMessage(n, stateDir, freshCommand) : null };
}
