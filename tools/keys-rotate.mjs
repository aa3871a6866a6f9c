#!/usr/bin/env node
// npm run keys:rotate -- [--key data|index|patients] [--url <base>] [--office <id>] [--batch <n>]
// Rotates stored data to the keys now configured, through the Worker (the keys never leave its
// environment), calling the admin endpoint of the chosen key until a whole pass is done:
//   data      POST /v1/admin/data-keys/rotate     re-encrypts Stripe ids under DATA_ENCRYPTION_KEY's first key
//   index     POST /v1/admin/data-index/rotate    re-indexes Stripe ids under DATA_INDEX_KEY
//   patients  POST /v1/admin/patient-keys/rotate  moves patient pseudonyms to PATIENT_KEY_CHAIN's last version
// Every step is re-runnable: an interrupted run is resumed by running it again.
// Token: BILLING_TOKEN (a platform_admin token) or, locally, one minted from .dev.vars.
import { parseCli, usageError } from "./lib/cli.mjs";
import { operatorToken } from "./token.mjs";

const USAGE = `usage: npm run keys:rotate -- [--key data|index|patients] [--url <base>] [--office <id>] [--batch <n>]
Moves stored data to the keys now configured, through the Worker, until a whole pass is done
(docs/operations.md, "Rotating keys"). Re-runnable: run it again to resume.
  --key <which>    data: re-encrypt Stripe ids under DATA_ENCRYPTION_KEY's first key (default)
                   index: re-index Stripe ids under DATA_INDEX_KEY (DATA_INDEX_KEY_PREVIOUS still set)
                   patients: move patient pseudonyms to the last version of PATIENT_KEY_CHAIN
  --url <base>     the API (default BILLING_URL, else http://127.0.0.1:8787)
  --office <id>    only this office
  --batch <n>      rows (data, index) or offices (patients) per request (default 100, 100, 10)
  -h, --help       this text
environment: BILLING_TOKEN (a platform_admin bearer token; locally, one is minted from .dev.vars)`;

const { values: args } = parseCli("keys:rotate", USAGE, {
  key: { type: "string", default: "data" },
  url: { type: "string", default: process.env.BILLING_URL || "http://127.0.0.1:8787" },
  office: { type: "string" },
  batch: { type: "string" },
});

const paths = { data: "/v1/admin/data-keys/rotate", index: "/v1/admin/data-index/rotate", patients: "/v1/admin/patient-keys/rotate" };
if (!(args.key in paths)) usageError("keys:rotate", USAGE, `--key must be data, index or patients, not ${JSON.stringify(args.key)}`);
const batch = Number(args.batch ?? (args.key === "patients" ? 10 : 100));
if (!Number.isInteger(batch) || batch < 1) usageError("keys:rotate", USAGE, "--batch must be a positive integer");

function token() {
  try {
    return operatorToken(args.url, "keys-rotate-cli");
  } catch {
    console.error("keys:rotate: set BILLING_TOKEN to a platform_admin token (or run locally with .dev.vars)");
    process.exit(2);
  }
}

const auth = `Bearer ${token()}`;
const sum = {};
let cursor;
let last;
for (let round = 1; ; round++) {
  const res = await fetch(new URL(paths[args.key], args.url), {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/json" },
    body: JSON.stringify({ batchSize: batch, ...(args.office ? { officeId: args.office } : {}), ...(cursor ? { cursor } : {}) }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    console.error(`keys:rotate: ${res.status} ${body.code ?? ""} ${body.detail ?? ""} (request ${body.requestId ?? "?"})`);
    process.exit(1);
  }
  last = body;
  for (const [k, v] of Object.entries(body)) if (typeof v === "number") sum[k] = (sum[k] ?? 0) + v;
  if (Array.isArray(body.failed)) sum.failedOffices = (sum.failedOffices ?? 0) + body.failed.length;
  if (args.key === "data") console.log(`round ${round}: re-encrypted ${body.reencrypted} under ${body.currentKeyId}, ${body.unreadable} unreadable, ${body.remaining} remaining`);
  if (args.key === "index") console.log(`round ${round}: examined ${body.examined}, re-indexed ${body.reindexed}, ${body.unreadable} unreadable`);
  if (args.key === "patients") {
    console.log(`round ${round}: ${body.rekeyed} office(s) moved to version ${body.currentVersion} (${body.patients} pseudonyms), ${body.failed.length} failed, ${body.remaining} remaining`);
    for (const f of body.failed) console.error(`  ${f.officeId}: ${f.code}`);
  }
  cursor = body.nextCursor;
  if (!cursor) break;
}

if (args.key === "data") {
  if (last.remaining > 0) {
    console.error(`keys:rotate: ${sum.reencrypted} re-encrypted, but ${last.remaining} value(s) remain under older keys (${sum.unreadable} unreadable: is every old key still in DATA_ENCRYPTION_KEY?). Keep the old keys.`);
    process.exit(1);
  }
  console.log(`done: ${sum.reencrypted} value(s) re-encrypted; the older keys can now be removed from DATA_ENCRYPTION_KEY`);
} else if (args.key === "index") {
  if (sum.unreadable > 0) {
    console.error(`keys:rotate: ${sum.reindexed} re-indexed, but ${sum.unreadable} value(s) could not be decrypted (so keep their old index). Keep DATA_INDEX_KEY_PREVIOUS.`);
    process.exit(1);
  }
  console.log(`done: a whole pass, ${sum.reindexed} value(s) re-indexed; DATA_INDEX_KEY_PREVIOUS can now be removed`);
} else {
  if (last.remaining > 0) {
    console.error(`keys:rotate: ${sum.rekeyed} office(s) moved, but ${last.remaining} remain under an older version (${sum.failedOffices} failed in this run). Run it again.`);
    process.exit(1);
  }
  console.log(`done: ${sum.rekeyed} office(s) moved to patient key version ${last.currentVersion}; every office is there`);
}
