#!/usr/bin/env node
// A small local receiver of the billing API's events for the clinical application
// (docs/clinical-events.md): it verifies each delivery's Billing-Signature (HMAC-SHA256 over
// `${t}.${body}`, any v1 matching any of its secrets, t within 5 minutes), drops a repeated event id
// (answered 200: already received), and prints each event. `npm run dev` starts it; run alone:
//   node tools/clinical-receiver.mjs --port 8790 --secret <CLINICAL_WEBHOOK_SECRET> [--secret <previous>]
// With `controls`, the tests' receiver also answers GET /_received?officeId=… (what it received) and
// POST /_fail {officeId, status, times} (answer the next `times` deliveries of that office with `status`).
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

export const TOLERANCE_SECONDS = 300;

/**
 * @param {string | undefined} header @param {string} body @param {string[]} secrets @param {number} nowSeconds
 * @returns {boolean}
 */
export function verifySignature(header, body, secrets, nowSeconds, tolerance = TOLERANCE_SECONDS) {
  if (!header) return false;
  const parts = header.split(",").map((p) => p.trim());
  const t = Number(parts.find((p) => p.startsWith("t="))?.slice(2));
  const given = parts.filter((p) => p.startsWith("v1=")).map((p) => p.slice(3));
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > tolerance || given.length === 0) return false;
  for (const secret of secrets) {
    const expected = Buffer.from(createHmac("sha256", secret).update(`${t}.${body}`).digest("hex"));
    if (given.some((g) => g.length === expected.length && timingSafeEqual(Buffer.from(g), expected))) return true;
  }
  return false;
}

/**
 * @param {{ port?: number, secrets: string[], controls?: boolean, log?: (line: string) => void, now?: () => number }} options
 */
export async function startClinicalReceiver({ port = 0, secrets, controls = false, log = () => {}, now = () => Date.now() }) {
  /** @type {{ id: string, type: string, officeId: string, sequence: number, occurredAt: string, data: Record<string, unknown>, signature: string, duplicate: boolean }[]} */
  const received = [];
  const seen = new Set();
  /** @type {Map<string, { status: number, times: number }>} */
  const faults = new Map();
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://receiver");
    const reply = (status, payload) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    if (controls && req.method === "GET" && url.pathname === "/_received") {
      const officeId = url.searchParams.get("officeId");
      return reply(200, received.filter((e) => !officeId || e.officeId === officeId));
    }
    if (controls && req.method === "POST" && url.pathname === "/_fail") {
      const { officeId, status, times } = JSON.parse(body);
      faults.set(officeId, { status, times });
      return reply(200, { ok: true });
    }
    if (req.method !== "POST") return reply(405, { error: "method_not_allowed" });
    const signature = String(req.headers["billing-signature"] ?? "");
    if (!verifySignature(signature, body, secrets, Math.floor(now() / 1000))) {
      log(`refused a delivery with a bad signature`);
      return reply(400, { error: "signature_invalid" });
    }
    let event;
    try {
      event = JSON.parse(body);
    } catch {
      return reply(400, { error: "malformed_json" });
    }
    const fault = faults.get(event.officeId);
    if (fault && fault.times > 0) {
      fault.times -= 1;
      return reply(fault.status, { error: "fault_injected" });
    }
    const duplicate = seen.has(event.id);
    seen.add(event.id);
    received.push({ ...event, signature, duplicate });
    log(`${duplicate ? "(duplicate, ignored) " : ""}#${event.sequence} ${event.type} ${event.officeId} ${JSON.stringify(event.data)}`);
    return reply(200, { received: true, duplicate });
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : port}`;
  return {
    url,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { parseCli } = await import("./lib/cli.mjs");
  const USAGE = `usage: node tools/clinical-receiver.mjs --secret <secret> [--secret <previous>] [--port 8790]
Receives the billing API's events for the clinical application, verifies their Billing-Signature and prints them.
  --secret <secret>  a CLINICAL_WEBHOOK_SECRET (give two during a rotation)
  --port <port>      the port (default 8790)
  -h, --help         this text`;
  const { values } = parseCli("clinical-receiver", USAGE, { secret: { type: "string", multiple: true }, port: { type: "string", default: "8790" } });
  if (!values.secret?.length) {
    process.stderr.write(`clinical-receiver: --secret is required\n${USAGE}\n`);
    process.exit(2);
  }
  const receiver = await startClinicalReceiver({ port: Number(values.port), secrets: values.secret, log: (line) => console.log(line) });
  console.log(`clinical receiver listening on ${receiver.url}`);
}
