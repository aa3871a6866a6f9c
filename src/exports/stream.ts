import type { Database } from "../db/client";
import { csvRecord, ndjsonRecord, type Cell, type MaybeCell } from "./csv";
import type { Dataset } from "./datasets";

export type ExportFormat = "csv" | "ndjson";

/** Rows a database round trip fetches while streaming. */
export const EXPORT_PAGE_SIZE = 500;

/**
 * The export as a stream: one keyset page a pull, written out as it arrives, so at most one page
 * is held in memory whatever the range. `onDone` runs once after the last page with the row count.
 */
export function exportStream(
  db: Database,
  dataset: Dataset,
  range: { fromAt: number; toAt: number; officeId?: string },
  format: ExportFormat,
  onDone: (rows: number) => Promise<void>,
  pageSize = EXPORT_PAGE_SIZE,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let after: MaybeCell[] | null = null;
  let rows = 0;
  let started = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!started && format === "csv") {
          started = true;
          controller.enqueue(encoder.encode(csvRecord(dataset.columns)));
          return;
        }
        started = true;
        const page = await db.all<Record<string, Cell>>(dataset.page(range, after, pageSize));
        if (page.length > 0) {
          rows += page.length;
          after = dataset.key(page.at(-1)!);
          const text = page.map((r) => (format === "csv" ? csvRecord(dataset.cells(r)) : ndjsonRecord(dataset.columns, dataset.cells(r)))).join("");
          controller.enqueue(encoder.encode(text));
        }
        if (page.length < pageSize) {
          await onDone(rows);
          controller.close();
        }
      },
    },
    // One page queued at a time: the database is read as fast as the client reads.
    { highWaterMark: 1 },
  );
}
