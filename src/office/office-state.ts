import { eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { offices, type OfficeStatus } from "../db/offices";

export type OfficeSnapshot = { id: string; status: OfficeStatus };

/**
 * The office row as its Durable Object last knew it, kept in the object's own storage. The
 * object is the only writer of an office's billing state, so after the first read the copy stays
 * current without another database round trip; the object refreshes it whenever it changes the
 * office itself.
 */
export class OfficeStateCache {
  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec("CREATE TABLE IF NOT EXISTS office_snapshot (id TEXT PRIMARY KEY, status TEXT NOT NULL)");
  }

  get(officeId: string): OfficeSnapshot | null {
    return this.storage.sql.exec<OfficeSnapshot>("SELECT id, status FROM office_snapshot WHERE id = ?", officeId).toArray()[0] ?? null;
  }

  set(snapshot: OfficeSnapshot): void {
    this.storage.sql.exec(
      "INSERT INTO office_snapshot (id, status) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status",
      snapshot.id,
      snapshot.status,
    );
  }

  /** The snapshot, reading the database only when this object has none yet. Null: no such office. */
  async load(db: Database, officeId: string): Promise<OfficeSnapshot | null> {
    const cached = this.get(officeId);
    if (cached) return cached;
    const [row] = await db.select({ id: offices.id, status: offices.status }).from(offices).where(eq(offices.id, officeId));
    if (row) this.set(row);
    return row ?? null;
  }
}
