#!/usr/bin/env node
// npm run keys:rotate -- [--url <base>] [--office <id>] [--batch 100]
// Re-encrypts stored provider references under the current data key, through the Worker (the
// keys never leave its environment): calls POST /v1/admin/data-keys/rotate until nothing remains.
// Token: BILLING_TOKEN (a platform_admin token) or, locally, one minted from .dev.vars.
import { fileURLToPath } from "node:url";
import { parseCli } from "./lib/cli.mjs";
import { readDevVars } from "./lib/dev-vars.mjs";
import { operatorToken } from "./token.mjs";

const USAGE = `usage: npm run keys:rotate -- [--url <base>] [--office <id>] [--batch 100]
Re-encrypts stored Stripe ids under the current data key, through the Worker's
POST /v1/admin/data-keys/rotate, until nothing remains under an older key.
  --url <base>     the API (default BILLING_URL, else http://127.0.0.1:8787)
  --office <id>    only this office's values
  --batch <n>      values per request (default 100)
  -h, --help       this text
environment: BILLING_TOKEN (a platform_admin bearer token; locally, one is minted from .dev.vars)`;

const { values: args } = parseCli("keys:rotate", USAGE, {
  url: { type: "string", default: process.env.BILLING_URL || "http://127.0.0.1:8787" },
  office: { type: "string" },
  batch: { type: "string", default: "100" },
});

function token() {
  try {
    return operatorToken(args.url, "keys-rotate-cli");
  } catch {
    console.error("keys:rotate: set BILLING_TOKEN to a platform_admin token (or run locally with .dev.vars)");
    process.exit(2);
  }
}

const auth = `Bearer ${token()}`;
let total = 0;
let unreadable = 0;
let cursor;
let remaining = 0;
for (let round = 1; ; round++) {
  const res = await fetch(new URL("/v1/admin/data-keys/rotate", args.url), {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/json" },
    body: JSON.stringify({ batchSize: Number(args.batch), ...(args.office ? { officeId: args.office } : {}), ...(cursor ? { cursor } : {}) }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    console.error(`keys:rotate: ${res.status} ${body.code ?? ""} ${body.detail ?? ""} (request ${body.requestId ?? "?"})`);
    process.exit(1);
  }
  total += body.reencrypted;
  unreadable += body.unreadable;
  remaining = body.remaining;
  console.log(`round ${round}: re-encrypted ${body.reencrypted} under ${body.currentKeyId}, ${body.unreadable} unreadable, ${body.remaining} remaining`);
  cursor = body.nextCursor;
  if (!cursor) break;
}
if (remaining > 0) {
  console.error(`keys:rotate: ${total} re-encrypted, but ${remaining} value(s) remain under older keys (${unreadable} unreadable: is every old key still in DATA_ENCRYPTION_KEY?). Keep the old keys.`);
  process.exit(1);
}
console.log(`done: ${total} value(s) re-encrypted; the older keys can now be removed from DATA_ENCRYPTION_KEY`);
