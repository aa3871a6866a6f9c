import { sql } from "drizzle-orm";
import { integer } from "drizzle-orm/sqlite-core";

/** Epoch milliseconds (UTC). Every instant in the billing database is stored this way. */
export const epochMs = (name: string) => integer(name, { mode: "number" });

/** Creation time (epoch ms) with a database default, so a row never lacks it. */
export const createdAt = () =>
  integer("created_at", { mode: "number" })
    .notNull()
    .default(sql`(CAST(unixepoch('subsec') * 1000 AS INTEGER))`);
