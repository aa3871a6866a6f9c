/**
 * Cells of an export (docs/analytics.md, "Exports"): CSV per RFC 4180 (CRLF records, a field with
 * a comma, quote, CR or LF quoted, quotes doubled) and NDJSON (one JSON object a line).
 */

export type Cell = string | number | boolean | null;
/** A cell as read from a row (a column the row lacks is empty). */
export type MaybeCell = Cell | undefined;

/** Text a spreadsheet would read as a formula (or a DDE call) when it starts the cell. */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A text cell that a spreadsheet would evaluate gets a leading `'` (OWASP's CSV-injection
 * advice). Numbers we write are left alone: a negative amount stays a number.
 */
export function escapeFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** One CSV field: null is empty, text formula-escaped, quoted when it must be. */
export function csvField(value: MaybeCell): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = escapeFormula(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV record, CRLF-terminated. */
export const csvRecord = (cells: readonly MaybeCell[]) => `${cells.map(csvField).join(",")}\r\n`;

/** One NDJSON line from a header and its cells. */
export function ndjsonRecord(columns: readonly string[], cells: readonly MaybeCell[]): string {
  const obj: Record<string, Cell> = {};
  columns.forEach((c, i) => (obj[c] = cells[i] ?? null));
  return `${JSON.stringify(obj)}\n`;
}
