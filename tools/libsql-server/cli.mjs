#!/usr/bin/env node
// Local libSQL server (Hrana over HTTP). Usage:
//   node tools/libsql-server/cli.mjs [--port 8080] [--host 127.0.0.1] [--file <path> | --memory]
//        [--auth-token <token>] [--stream-idle-ms 15000] [--busy-timeout-ms 5000] [--latency-ms 0]
// Prints `listening on http://<host>:<port>` once ready; SIGINT/SIGTERM close it cleanly.
import { parseArgs } from "node:util";
import { startServer } from "./server.mjs";

const usage = `usage: node tools/libsql-server/cli.mjs [--port 8080] [--host 127.0.0.1] [--file <path> | --memory]
       [--auth-token <token>] [--stream-idle-ms 15000] [--busy-timeout-ms 5000] [--latency-ms 0]
  --latency-ms <n>   answer every round trip (pipeline, cursor) n ms later: a remote database, for benchmarks`;

/** @param {string} message @returns {never} */
function fail(message) {
  process.stderr.write(`libsql-server: ${message}\n${usage}\n`);
  process.exit(2);
}

function parse() {
  try {
    return parseArgs({
      options: {
        port: { type: "string", default: "8080" },
        host: { type: "string", default: "127.0.0.1" },
        file: { type: "string" },
        memory: { type: "boolean", default: false },
        "auth-token": { type: "string" },
        "stream-idle-ms": { type: "string" },
        "busy-timeout-ms": { type: "string" },
        "latency-ms": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    return fail(/** @type {Error} */ (e).message);
  }
}
const values = parse();
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

/** @param {string} name @param {string|undefined} raw @param {number} min */
function integer(name, raw, min) {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}`);
  return n;
}

if (values.file !== undefined && values.memory) fail("give either --file or --memory, not both");
if (values.file === "") fail("--file needs a path");
const port = integer("port", values.port, 0);
if (port !== undefined && port > 65535) fail("--port must be at most 65535");

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
try {
  server = await startServer({
    port,
    host: values.host,
    file: values.file,
    memory: values.file === undefined,
    authToken: values["auth-token"],
    streamIdleMs: integer("stream-idle-ms", values["stream-idle-ms"], 1),
    busyTimeoutMs: integer("busy-timeout-ms", values["busy-timeout-ms"], 0),
    latencyMs: integer("latency-ms", values["latency-ms"], 0),
  });
} catch (e) {
  process.stderr.write(`libsql-server: could not start: ${/** @type {Error} */ (e).message}\n`);
  process.exit(1);
}
process.stdout.write(`listening on ${server.url}\n`);

let stopping = false;
/** @param {string} signal */
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => {
    process.stderr.write(`libsql-server: ${signal}: close timed out, exiting\n`);
    process.exit(1);
  }, 5000);
  force.unref();
  try {
    await server.close();
    process.exit(0);
  } catch (e) {
    process.stderr.write(`libsql-server: error while closing: ${/** @type {Error} */ (e).message}\n`);
    process.exit(1);
  }
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
