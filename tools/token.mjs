#!/usr/bin/env node
// npm run token -- --role <role> [--office <id>...] [--sub <id>] [--ttl 1h]
// Prints an HS256 dev token signed with AUTH_DEV_SECRET from the environment or .dev.vars. The
// Worker accepts such tokens only when ENVIRONMENT is development or test.
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { parseCli, usageError } from "./lib/cli.mjs";
import { readDevVars } from "./lib/dev-vars.mjs";

const ROLES = ["platform_admin", "office_admin", "office_viewer", "clinical_system"];

const USAGE = `usage: npm run token -- --role <role> [--office <id>...] [--sub <id>] [--ttl 1h]
Prints an HS256 dev access token signed with AUTH_DEV_SECRET (environment, then .dev.vars).
  --role <role>    ${ROLES.join(", ")} (required)
  --office <id>    an office the token may act for (office_ids); repeat for several
  --sub <id>       the token's subject (default dev-<role>)
  --ttl <ttl>      lifetime: 90s, 15m, 1h (default) or 7d
  -h, --help       this text`;

/** @type {(message: string) => never} */
const usage = (message) => usageError("token", USAGE, message);

/** @param {string} ttl e.g. 90s, 15m, 1h, 7d */
export function parseTtl(ttl) {
  const m = /^(\d+)([smhd])$/.exec(ttl);
  if (!m) return null;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[/** @type {"s" | "m" | "h" | "d"} */ (m[2])];
}

/** @param {string} data */
const b64url = (data) => Buffer.from(data).toString("base64url");

/** @param {string} secret @param {Record<string, unknown>} claims */
export function signDevToken(secret, claims) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/**
 * A dev access token for `vars` (.dev.vars or a stack's settings): AUTH_DEV_SECRET signs it, with
 * the configured issuer and audience. The one place the dev tools build token claims.
 * @param {Record<string, string | undefined>} vars
 * @param {{ role: string, officeIds?: string[], sub?: string, ttlSeconds?: number }} who
 */
export function devToken(vars, { role, officeIds = [], sub, ttlSeconds = 3600 }) {
  const now = Math.floor(Date.now() / 1000);
  return signDevToken(/** @type {string} */ (vars.AUTH_DEV_SECRET), {
    sub: sub ?? `dev-${role}`,
    role,
    office_ids: officeIds,
    iss: vars.AUTH_ISSUER || "office-billing-dev",
    aud: vars.AUTH_AUDIENCE || "office-billing-api",
    iat: now,
    nbf: now,
    exp: now + ttlSeconds,
  });
}

/** A platform_admin token for the operator tools: BILLING_TOKEN, else (local instances only) a dev token from .dev.vars. */
/** @param {string} url @param {string} sub @returns {string} */
export function operatorToken(url, sub) {
  if (process.env.BILLING_TOKEN) return process.env.BILLING_TOKEN;
  const local = /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?(\/|$)/.test(url);
  const vars = readDevVars(fileURLToPath(new URL("../.dev.vars", import.meta.url)));
  if (!local || !vars.AUTH_DEV_SECRET) throw new Error("BILLING_TOKEN is not set (a platform_admin token is needed for a deployed instance)");
  return devToken(vars, { role: "platform_admin", sub, ttlSeconds: 3600 });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseCli("token", USAGE, {
    role: { type: "string" },
    office: { type: "string", multiple: true, default: [] },
    sub: { type: "string" },
    ttl: { type: "string", default: "1h" },
  });
  if (!values.role || !ROLES.includes(values.role)) usage("--role must be one of " + ROLES.join(", "));
  const ttl = parseTtl(values.ttl);
  if (!ttl) usage("--ttl must look like 90s, 15m, 1h or 7d");
  const vars = { ...readDevVars(fileURLToPath(new URL("../.dev.vars", import.meta.url))), ...process.env };
  if (!vars.AUTH_DEV_SECRET) usage("AUTH_DEV_SECRET is not set (run `npm run dev` once to create .dev.vars)");
  const token = devToken(vars, { role: values.role, officeIds: values.office, sub: values.sub, ttlSeconds: ttl });
  console.log(token);
}
