#!/usr/bin/env node
// npm run token -- --role <role> [--office <id>...] [--sub <id>] [--ttl 1h]
// Prints an HS256 dev token signed with AUTH_DEV_SECRET from the environment or .dev.vars. The
// Worker accepts such tokens only when ENVIRONMENT is development or test.
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { readDevVars } from "./lib/dev-vars.mjs";

const ROLES = ["platform_admin", "office_admin", "office_viewer", "clinical_system"];

function usage(message) {
  if (message) console.error(`token: ${message}`);
  console.error("usage: npm run token -- --role <" + ROLES.join("|") + "> [--office <id>...] [--sub <id>] [--ttl 1h]");
  process.exit(2);
}

/** @param {string} ttl e.g. 90s, 15m, 1h, 7d */
export function parseTtl(ttl) {
  const m = /^(\d+)([smhd])$/.exec(ttl);
  if (!m) return null;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
}

const b64url = (data) => Buffer.from(data).toString("base64url");

export function signDevToken(secret, claims) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        role: { type: "string" },
        office: { type: "string", multiple: true, default: [] },
        sub: { type: "string" },
        ttl: { type: "string", default: "1h" },
      },
    }));
  } catch (err) {
    usage(err.message);
  }
  if (!values.role || !ROLES.includes(values.role)) usage("--role must be one of " + ROLES.join(", "));
  const ttl = parseTtl(values.ttl);
  if (!ttl) usage("--ttl must look like 90s, 15m, 1h or 7d");
  const vars = { ...readDevVars(fileURLToPath(new URL("../.dev.vars", import.meta.url))), ...process.env };
  if (!vars.AUTH_DEV_SECRET) usage("AUTH_DEV_SECRET is not set (run `npm run dev` once to create .dev.vars)");
  const now = Math.floor(Date.now() / 1000);
  const token = signDevToken(vars.AUTH_DEV_SECRET, {
    sub: values.sub ?? `dev-${values.role}`,
    role: values.role,
    office_ids: values.office,
    iss: vars.AUTH_ISSUER || "office-billing-dev",
    aud: vars.AUTH_AUDIENCE || "office-billing-api",
    iat: now,
    nbf: now,
    exp: now + ttl,
  });
  console.log(token);
}
