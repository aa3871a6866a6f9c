#!/usr/bin/env node
// npm run dev [-- --fresh] [--port 8787] [--db-port 8080] [--stripe-port 12111] [--clinical-port 8790] [--data .data] [--no-seed]
// Starts the local libSQL server on .data/dev.db and the local Stripe emulator (unless .dev.vars
// names a real Stripe key), applies the migrations, then runs `wrangler dev` on
// http://127.0.0.1:8787. On first start it seeds a demo (tools/lib/demo.mjs); every start prints
// tokens for each role and example requests. No accounts and no network. Ctrl-C stops everything.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCli } from "./lib/cli.mjs";
import { readDevVars } from "./lib/dev-vars.mjs";
import { applyMigrations } from "./lib/migrate.mjs";
import { ensureDevVars } from "./lib/dev-vars.mjs";
import { waitForApi } from "./lib/api.mjs";
import { ensureDemo } from "./lib/demo.mjs";
import { now } from "./lib/clock.mjs";
import { devToken } from "./token.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const USAGE = `usage: npm run dev [-- --fresh] [--port 8787] [--db-port 8080] [--stripe-port 12111] [--clinical-port 8790] [--data .data] [--no-seed]
Starts the local libSQL server, the local Stripe emulator (unless .dev.vars names a real Stripe key),
applies the migrations and runs \`wrangler dev\`; seeds a demo on first start and prints dev tokens.
  --fresh               delete the data directory (database, Durable Object state, Stripe emulator state, demo) first
  --port <port>         the Worker's port (default 8787)
  --db-port <port>      the local libSQL server's port (default 8080)
  --stripe-port <port>  the Stripe emulator's port (default 12111)
  --clinical-port <port>  the local receiver of clinical events (default 8790; prints each event)
  --data <dir>          the data directory (default .data)
  --no-seed             do not seed the demo
  -h, --help            this text`;
const { values: args } = parseCli("dev", USAGE, {
  fresh: { type: "boolean", default: false },
  port: { type: "string", default: "8787" },
  "db-port": { type: "string", default: "8080" },
  "stripe-port": { type: "string", default: "12111" },
  "clinical-port": { type: "string", default: "8790" },
  data: { type: "string", default: ".data" },
  "no-seed": { type: "boolean", default: false },
});

const dataDir = resolve(root, args.data);
if (args.fresh) {
  rmSync(dataDir, { recursive: true, force: true });
  console.log(`dev: --fresh: removed ${args.data}/`);
}
mkdirSync(dataDir, { recursive: true });

const devVarsPath = join(root, ".dev.vars");
ensureDevVars(devVarsPath, join(root, ".dev.vars.example"));
const dbUrl = `http://127.0.0.1:${args["db-port"]}`;
const devVars = readDevVars(devVarsPath);
if (devVars.TURSO_DATABASE_URL && devVars.TURSO_DATABASE_URL.replace(/\/$/, "") !== dbUrl) {
  console.log(`dev: note: .dev.vars points TURSO_DATABASE_URL at ${devVars.TURSO_DATABASE_URL}; the Worker is started with ${dbUrl}`);
}

/** @type {import('node:child_process').ChildProcess[]} */
const children = [];
let stopping = false;
function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  // Each child leads its own process group (wrangler runs workerd below it): end whole groups.
  for (const child of children) {
    if (child.exitCode !== null) continue;
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      child.kill("SIGTERM");
    }
  }
  setTimeout(() => process.exit(code), 1500).unref();
  Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once("exit", r))))).then(() => process.exit(code));
}
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));

// 1. The local libSQL server, on a file that survives restarts.
const db = spawn(process.execPath, [join(root, "tools/libsql-server/cli.mjs"), "--port", args["db-port"], "--file", join(dataDir, "dev.db")], {
  stdio: ["ignore", "pipe", "inherit"],
  detached: true,
});
children.push(db);
db.on("exit", (code) => {
  if (!stopping) {
    console.error(`dev: the libSQL server exited (${code}); stopping`);
    stop(1);
  }
});
/** Stops everything and never returns, so nothing after a failure runs. */
function fatal(message) {
  console.error(`dev: ${message}`);
  stop(1);
  return new Promise(() => {});
}

await new Promise((resolve, reject) => {
  let buffered = "";
  db.stdout.on("data", (chunk) => {
    const text = chunk.toString();
    process.stdout.write(`[db] ${text}`);
    buffered += text;
    if (buffered.includes("listening on http://")) resolve(undefined);
  });
  db.once("exit", () => reject(new Error("libSQL server did not start")));
}).catch((err) => fatal(err.message));

// 1b. The local Stripe emulator, unless .dev.vars names a real Stripe key (then the gateway talks
// to Stripe over https).
const LOCAL_STRIPE_KEY = "sk_test_localemulator0000";
const realStripe = /^(sk|rk)_(test|live)_/.test(devVars.STRIPE_SECRET_KEY ?? "") && devVars.STRIPE_SECRET_KEY !== LOCAL_STRIPE_KEY && !devVars.STRIPE_API_BASE;
const stripeVars = [];
if (!realStripe) {
  // The emulator posts its signed events (invoice finalized, paid, failed, …) to the Worker, as Stripe would.
  const webhook = devVars.STRIPE_WEBHOOK_SECRET ? ["--webhook-url", `http://127.0.0.1:${args.port}/webhooks/stripe`, "--webhook-secret", devVars.STRIPE_WEBHOOK_SECRET] : [];
  // Its objects live beside the database (<data>/stripe/state.json), so restarts keep both and --fresh clears both.
  const state = ["--state", join(dataDir, "stripe")];
  const stripe = spawn(process.execPath, [join(root, "tools/stripe-emulator/cli.mjs"), "--port", args["stripe-port"], ...state, ...webhook], { stdio: ["ignore", "pipe", "inherit"], detached: true });
  children.push(stripe);
  await new Promise((resolve, reject) => {
    stripe.stdout.on("data", (chunk) => {
      process.stdout.write(`[stripe] ${chunk}`);
      if (chunk.toString().includes("listening on http://")) resolve(undefined);
    });
    stripe.once("exit", () => reject(new Error("Stripe emulator did not start")));
  }).catch((err) => fatal(err.message));
  stripeVars.push("--var", `STRIPE_API_BASE:http://127.0.0.1:${args["stripe-port"]}`, "--var", `STRIPE_SECRET_KEY:${devVars.STRIPE_SECRET_KEY || LOCAL_STRIPE_KEY}`);
  // Portal sessions need the account's default configuration: what saving the customer portal
  // settings in Stripe's Dashboard makes (kept in the emulator's state; saving again changes nothing).
  await fetch(`http://127.0.0.1:${args["stripe-port"]}/_emulator/billing-portal/default`, { method: "POST", body: "{}" }).catch((err) => console.log(`dev: the emulator's default portal configuration was not saved: ${err.message}`));
}

// 1c. A small local receiver of the events for the clinical application (docs/clinical-events.md):
// it verifies each delivery's signature and prints it. Used when .dev.vars names no receiver of its own.
const clinicalVars = [];
if (!devVars.CLINICAL_WEBHOOK_URL && devVars.CLINICAL_WEBHOOK_SECRET) {
  const { startClinicalReceiver } = await import("./clinical-receiver.mjs");
  const secrets = [devVars.CLINICAL_WEBHOOK_SECRET, devVars.CLINICAL_WEBHOOK_SECRET_PREVIOUS].filter(Boolean);
  const receiver = await startClinicalReceiver({ port: Number(args["clinical-port"]), secrets, log: (line) => console.log(`[clinical] ${line}`) }).catch((err) => fatal(`the clinical receiver did not start: ${err.message}`));
  console.log(`[clinical] receiver listening on ${receiver.url}/events`);
  clinicalVars.push("--var", `CLINICAL_WEBHOOK_URL:${receiver.url}/events`);
}

// 2. Migrations.
try {
  const { applied } = await applyMigrations({ url: dbUrl });
  console.log(`dev: migrations up to date (${applied} applied)`);
} catch (err) {
  await fatal(`migration failed: ${err instanceof Error ? err.message : err} (an old local database? \`npm run dev -- --fresh\` starts over)`);
}

// 2b. Does the emulator still have the Stripe objects the database names? One line when not.
if (!realStripe) {
  const { checkStripeState } = await import("./lib/stripe-state.mjs");
  const fresh = `npm run dev -- --fresh${args.data === ".data" ? "" : ` --data ${args.data}`}`;
  await checkStripeState({ dbUrl, encryptionKey: devVars.DATA_ENCRYPTION_KEY, emulatorUrl: `http://127.0.0.1:${args["stripe-port"]}`, stateDir: `${args.data}/stripe`, freshCommand: fresh })
    .then(({ message }) => message && console.log(message))
    .catch((err) => console.log(`dev: could not compare the database with the Stripe emulator: ${err instanceof Error ? err.message : err}`));
}

// 3. The Worker, in workerd, through wrangler (local mode, no account needed).
const wranglerBin = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");
const wrangler = spawn(
  process.execPath,
  // Durable Object storage lives beside the database, so --fresh starts both over together.
  [wranglerBin, "dev", "--ip", "127.0.0.1", "--port", args.port, "--persist-to", join(dataDir, "wrangler"), "--var", `TURSO_DATABASE_URL:${dbUrl}`, ...stripeVars, ...clinicalVars, "--show-interactive-dev-session=false"],
  {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    detached: true,
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false", // no network: use the placeholder request.cf
      WRANGLER_LOG_PATH: join(dataDir, "wrangler-logs"),
    },
  },
);
children.push(wrangler);
wrangler.on("exit", (code) => {
  if (!stopping) {
    console.error(`dev: wrangler exited (${code}); stopping`);
    stop(code ?? 1);
  }
});
console.log(`dev: Worker starting on http://127.0.0.1:${args.port} (database ${dbUrl}); Ctrl-C stops everything`);

// 4. The demo (first start only) and what to try.
const base = `http://127.0.0.1:${args.port}`;
const mint = (role, officeIds = []) => devToken(devVars, { role, officeIds, ttlSeconds: 12 * 3600 });
try {
  await waitForApi(base, 120_000);
  if (!devVars.AUTH_DEV_SECRET) {
    console.log("dev: AUTH_DEV_SECRET is not set in .dev.vars: no demo and no dev tokens");
  } else {
    let demo = null;
    try {
      demo = await ensureDemo({
        dataDir,
        now,
        seed: !args["no-seed"],
        base,
        adminToken: mint("platform_admin"),
        clinicalToken: (id) => mint("clinical_system", [id]),
        log: (line) => console.log(line.startsWith("seeding") || line.startsWith("resuming") ? `dev: ${line}` : `[demo] ${line}`),
      });
    } catch (err) {
      console.error(`dev: the demo is incomplete: ${err instanceof Error ? err.message : err}. The next \`npm run dev\` resumes it; \`npm run dev -- --fresh\` starts over.`);
    }
    const first = demo ? Object.values(demo.offices)[0].id : "off_<id>";
    const tokens = {
      platform_admin: mint("platform_admin"),
      office_admin: mint("office_admin", demo ? [first] : []),
      office_viewer: mint("office_viewer", demo ? [first] : []),
      clinical_system: mint("clinical_system", demo ? [first] : []),
    };
    const lines = [
      "",
      "dev: ready. Tokens (12 h; offices: the demo's first office):",
      ...Object.entries(tokens).map(([role, t]) => `  ${role.padEnd(16)} ${t}`),
      "",
      demo ? `Demo offices: ${Object.values(demo.offices).map((o) => `${o.legalName} ${o.id} (${o.timeZone})`).join("; ")}` : args["no-seed"] ? "No demo (--no-seed)." : "No demo yet (see above).",
      ...(demo?.highlights
        ? [
            `Demo terms: net ${demo.highlights.netTerms.daysUntilDue} for ${demo.highlights.netTerms.officeId}; coupon ${demo.highlights.discount.couponCode} on ${demo.highlights.discount.officeId}` +
              (demo.highlights.creditNote ? `; credit note ${demo.highlights.creditNote.creditNoteId} on ${base}/v1/offices/${demo.highlights.creditNote.officeId}/invoices/${demo.highlights.creditNote.invoiceId}` : ""),
          ]
        : []),
      "",
      "Try:",
      `  curl -s ${base}/v1/offices/${first}/usage -H "authorization: Bearer ${tokens.office_viewer}"`,
      `  curl -s -X POST ${base}/v1/offices/${first}/patient-events -H "authorization: Bearer ${tokens.clinical_system}" -H "content-type: application/json" -d '{"events":[{"patientId":"pt-1001","kind":"activate","occurredAt":"${new Date(now()).toISOString()}","idempotencyKey":"try-1"}]}'`,
      `  curl -s "${base}/v1/offices/${first}/invoices?limit=5" -H "authorization: Bearer ${tokens.office_admin}"`,
      "",
      `Billing console: ${base}/console (paste the platform_admin or office_admin token)`,
      `API reference: ${base}/docs   Operator CLI: npm run billing -- office ${first}`,
      "",
    ];
    console.log(lines.join("\n"));
  }
} catch (err) {
  console.error(`dev: demo/tokens skipped: ${err instanceof Error ? err.message : err}`);
}
