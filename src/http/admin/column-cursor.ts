import { sql } from "drizzle-orm";
import { encryptedColumns } from "../../security/data-keys";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "../../security/encoding";
import { ApiError } from "../problem";

/**
 * The cursor of the jobs that walk every encrypted column (data-key re-encryption, index
 * re-keying): per column, the last row id examined, so an unreadable row never blocks progress.
 * Opaque to clients (base64url of JSON); a cursor this API did not issue is a 400.
 */
export function readColumnCursor(cursor: string | undefined, columns: readonly unknown[] = encryptedColumns): string[] {
  if (!cursor) return columns.map(() => "");
  try {
    const after = JSON.parse(fromUtf8(fromBase64Url(cursor) ?? new Uint8Array())) as unknown;
    if (!Array.isArray(after) || after.length !== columns.length || !after.every((x) => typeof x === "string")) throw new Error();
    return after as string[];
  } catch {
    throw new ApiError("VALIDATION_FAILED", "The cursor is not one this API issued.", { errors: [{ path: "cursor", message: "invalid cursor" }] });
  }
}

export const writeColumnCursor = (after: string[]) => toBase64Url(utf8(JSON.stringify(after)));

/** Restricts a column walk to one office's rows (the `offices` table by its id, others by `office_id`). */
export const officeScope = (officeId: string | undefined) => (table: string) =>
  officeId ? sql` AND ${sql.raw(table === "offices" ? "id" : "office_id")} = ${officeId}` : sql``;
