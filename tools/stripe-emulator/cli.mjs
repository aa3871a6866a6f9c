#!/usr/bin/env node
// Local Stripe API emulator. Usage:
//   node tools/stripe-emulator/cli.mjs --port <port> [--host 127.0.0.1] [--webhook-url <url>]
//        [--webhook-secret whsec_...] [--rps 100] [--fault-rate 0.2] [--fault-kinds 429,500,timeout]
//        [--timeout-ms 30000] [--seed <n>] [--state <dir or .json file>] [--payment-delay-ms <ms>]
//        [--latency-ms <ms>]
// With --state, objects, idempotency keys and events survive restarts (README: "State across restarts").
// Prints `listening on http://127.0.0.1:<port>` once ready; SIGINT/SIGTERM close it and exit 0.
import { parseArgs } from "node:util";
import { startStripeEmulator } from "./server.mjs";

const usage = `usage: node tools/stripe-emulator/cli.mjs --port <port> [--host 127.0.0.1] [--webhook-url <url>]
       [--webhook-secret whsec_...] [--rps 100] [--fault-rate 0] [--fault-kinds 429,500,timeout]
       [--timeout-ms 30000] [--seed <n>] [--state <dir or .json file>] [--payment-delay-ms <ms>]
       [--latency-ms <ms>]`;

function fail(message) {
  process.stderr.write(`stripe-emulator: ${message}\n${usage}\n`);
  process.exit(2);
}

let values;
try {
  values = parseArgs({
    options: {
      port: { type: "string", default: "12111" },
      host: { type: "string", default: "127.0.0.1" },
      "webhook-url": { type: "string" },
      "webhook-secret": { type: "string" },
      rps: { type: "string", default: "100" },
      "fault-rate": { type: "string", default: "0" },
      "fault-kinds": { type: "string", default: "429,500,timeout" },
      "timeout-ms": { type: "string", default: "30000" },
      seed: { type: "string" },
      state: { type: "string" },
      "payment-delay-ms": { type: "string" },
      "latency-ms": { type: "string", default: "0" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (e) {
  fail(e.message);
}
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail("--port must be an integer in [0, 65535]");
const rps = Number(values.rps);
if (!Number.isInteger(rps) || rps < 0) fail("--rps must be an integer >= 0 (0 = unlimited)");
const faultRate = Number(values["fault-rate"]);
if (!(faultRate >= 0 && faultRate <= 1)) fail("--fault-rate must be in [0, 1]");
const timeoutMs = Number(values["timeout-ms"]);
if (!Number.isInteger(timeoutMs) || timeoutMs < 0) fail("--timeout-ms must be an integer >= 0");
const faultKinds = values["fault-kinds"].split(",").map((s) => s.trim()).filter(Boolean);
for (const k of faultKinds) if (!["429", "500", "500_saved", "timeout"].includes(k)) fail(`unknown fault kind: ${k}`);
const paymentDelayMs = values["payment-delay-ms"] === undefined ? undefined : Number(values["payment-delay-ms"]);
if (paymentDelayMs !== undefined && !(Number.isInteger(paymentDelayMs) && paymentDelayMs >= 0)) fail("--payment-delay-ms must be an integer >= 0");
const latencyMs = Number(values["latency-ms"]);
if (!Number.isInteger(latencyMs) || latencyMs < 0) fail("--latency-ms must be an integer >= 0");
if (Boolean(values["webhook-url"]) !== Boolean(values["webhook-secret"])) {
  process.stderr.write("stripe-emulator: warning: webhooks are only sent when both --webhook-url and --webhook-secret are set\n");
}

let emulator;
try {
  emulator = await startStripeEmulator({
    port,
    host: values.host,
    webhookUrl: values["webhook-url"],
    webhookSecret: values["webhook-secret"],
    rpsLimit: rps,
    faultRate,
    faultKinds,
    timeoutMs,
    seed: values.seed === undefined ? undefined : Number.isFinite(Number(values.seed)) ? Number(values.seed) : values.seed,
    state: values.state,
    paymentDelayMs,
    latencyMs,
  });
} catch (e) {
  process.stderr.write(`stripe-emulator: could not start: ${e.message}\n`);
  process.exit(1);
}
process.stdout.write(`listening on ${emulator.url}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await emulator.close().catch(() => {});
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
