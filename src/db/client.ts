import { createClient } from "@libsql/client/web";
import { drizzle } from "drizzle-orm/libsql/web";
import type { Config } from "../config";
import * as schema from "./schema";

export type Database = ReturnType<typeof createDatabase>;

/** Longest a single database round trip may take. */
export const DB_TIMEOUT_MS = 10_000;

/**
 * A drizzle database over libSQL's HTTP (Hrana) client. Created per request or per Durable
 * Object, never at module level: the Worker's env is only known per invocation.
 */
export function createDatabase(config: Pick<Config, "TURSO_DATABASE_URL" | "TURSO_AUTH_TOKEN">) {
  const client = createClient({
    url: config.TURSO_DATABASE_URL,
    authToken: config.TURSO_AUTH_TOKEN,
    intMode: "number",
    // A database that stops answering must not hold an office's operation queue forever.
    fetch: (input: Request | string, init?: RequestInit) => fetch(input, { ...init, signal: AbortSignal.timeout(DB_TIMEOUT_MS) }),
  });
  return drizzle(client, { schema });
}
