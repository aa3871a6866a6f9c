#!/usr/bin/env node
// npm run db:migrate — applies migrations/ to TURSO_DATABASE_URL (environment, then .dev.vars,
// then the local server's default http://127.0.0.1:8080), with TURSO_AUTH_TOKEN if set.
import { fileURLToPath } from "node:url";
import { readDevVars } from "./lib/dev-vars.mjs";
import { applyMigrations } from "./lib/migrate.mjs";

const devVars = readDevVars(fileURLToPath(new URL("../.dev.vars", import.meta.url)));
const url = process.env.TURSO_DATABASE_URL || devVars.TURSO_DATABASE_URL || "http://127.0.0.1:8080";
const authToken = process.env.TURSO_AUTH_TOKEN || devVars.TURSO_AUTH_TOKEN || undefined;

try {
  const { applied } = await applyMigrations({ url, authToken });
  console.log(`migrations up to date on ${new URL(url).host} (${applied} applied in total)`);
} catch (err) {
  console.error(`migration failed on ${new URL(url).host}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
