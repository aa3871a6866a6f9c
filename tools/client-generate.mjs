#!/usr/bin/env node
// npm run client:generate [-- --check]
// Writes client/schema.d.ts, the types of the typed API client (openapi-fetch) used by the operator
// CLI and the console, from the OpenAPI document the app generates — offline: the app's modules are
// loaded through vite (vitest's, with the console's text modules as in the tools tests), no server.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCli } from "./lib/cli.mjs";
import { SCHEMA_FILE, schemaTypes } from "./lib/client-schema.mjs";

const USAGE = `usage: npm run client:generate [-- --check]
Generates ${SCHEMA_FILE} (openapi-typescript) from the app's OpenAPI document (/openapi.json), offline.
  --check      writes nothing: exit 1 when ${SCHEMA_FILE} differs from what the routes generate
  -h, --help   this text`;

const root = fileURLToPath(new URL("..", import.meta.url));

/** The app's OpenAPI document, as the Worker serves it at /openapi.json. */
export async function openApiFromApp() {
  const { createViteServer } = await import("vitest/node");
  const server = await createViteServer({
    root,
    configFile: join(root, "vitest.tools.config.ts"),
    server: { middlewareMode: true, hmr: false, watch: null },
    appType: "custom",
    logLevel: "warn",
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  try {
    const { createApp } = await server.ssrLoadModule("/src/app.ts");
    const { openApiDocument } = await server.ssrLoadModule("/src/http/docs/openapi.ts");
    return openApiDocument(createApp());
  } finally {
    await server.close();
  }
}

async function main() {
  const { values } = parseCli("client:generate", USAGE, { check: { type: "boolean", default: false } });
  const types = await schemaTypes(await openApiFromApp());
  const file = join(root, SCHEMA_FILE);
  let current = null;
  try {
    current = readFileSync(file, "utf8");
  } catch {
    // not generated yet
  }
  if (values.check) {
    if (current === types) return console.log(`${SCHEMA_FILE} matches the routes`);
    console.error(`${SCHEMA_FILE} differs from what the routes generate: run \`npm run client:generate\` and commit it`);
    process.exitCode = 1;
    return;
  }
  if (current === types) return console.log(`${SCHEMA_FILE} unchanged`);
  writeFileSync(file, types);
  console.log(`wrote ${SCHEMA_FILE}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
