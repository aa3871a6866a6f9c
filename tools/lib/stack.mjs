// The local stack for benchmarks and drills: the project's libSQL server (a child process, so a
// drill can kill and restart it), the Stripe emulator (in this process, for its controls and
// logs) and the Worker under `wrangler dev`, each on a free loopback port, with fresh secrets.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@libsql/client";
import { startStripeEmulator } from "../stripe-emulator/server.mjs";
import { applyMigrations } from "./migrate.mjs";
import { generateLocalSecrets } from "./secrets.mjs";
import { devToken } from "../token.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));

export const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/**
 * `wrangler dev` attaches its DevTools proxy to the Worker's runtime and enables the Debugger and
 * Network domains there: every outbound fetch of the Worker (each database round trip, each Stripe
 * call) then becomes four Network events carried over two WebSocket hops (the runtime, wrangler's
 * proxy runtime) into wrangler's Node process. Measured in the invoicing bench: those processes
 * took ~40% and ~25% of a core, and the run went from 0.44–0.52 of the Stripe limit to 0.66 without
 * them (docs/performance.md). Production has no debugger attached, so the stack runs without it
 * unless asked (`devtools: true`). wrangler's CLI has no switch for it; it leaves the proxy out when
 * it runs in a VS Code JavaScript debug terminal, which this variable signals (the runtime's own
 * inspector stays available for a debugger to attach).
 */
const NO_DEVTOOLS_PROXY = { VSCODE_INSPECTOR_OPTIONS: "{}" };

/**
 * Where the stack keeps its files (the libSQL database, the local runtime's Durable Object
 * storage): in memory (/dev/shm) unless `storage: "disk"`. Local workerd commits every Durable
 * Object write transaction with an fsync on the isolate's one thread (perf on the invoicing bench:
 * ActorSqlite's implicit transaction → SQLite's WAL write → fsync, ~190 a second), so on this
 * machine's disk every office object waited for the disk several times per Stripe call. On
 * Cloudflare a Durable Object's writes are made durable behind its output gate, not by blocking its
 * thread on a local flush; files in memory survive a process kill (the drills), as on disk.
 * wrangler gets the same place as its TMPDIR: Miniflare keeps the storage of its own objects (the
 * local queue's broker among them) in a temporary directory.
 * @param {"memory"|"disk"} storage
 */
function stackDir(storage) {
  const parent = storage === "memory" && existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  return { dir: mkdtempSync(join(parent, "billing-stack-")), storage: parent === "/dev/shm" ? "memory" : "disk" };
}

/** What a stack gets when its caller says nothing (the bench's `--storage`). @type {{ storage: "memory"|"disk" }} */
export const stackDefaults = { storage: "memory" };

/** The libSQL server as a child process on a database file (survives a kill). */
function startDb(port, file, authToken, latencyMs = 0) {
  const child = spawn(process.execPath, [join(root, "tools/libsql-server/cli.mjs"), "--port", String(port), "--file", file, "--auth-token", authToken, "--latency-ms", String(latencyMs)], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("listening on http://")) resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`libSQL server exited (${code})`)));
  });
}

/**
 * Starts the stack. `stripe: false` runs the Worker without a Stripe key (nothing is sent: for
 * counting database round trips without the outboxes' traffic).
 * `webhooks: false` keeps the emulator from posting its events to the Worker.
 * `dbLatencyMs` adds that much to every database round trip (the libSQL server's --latency-ms);
 * `stripeLatencyMs` that much to every Stripe request (the emulator's latencyMs).
 * `devtools: true` keeps wrangler's DevTools proxy attached (NO_DEVTOOLS_PROXY).
 * `storage: "disk"` keeps the stack's files on disk instead of in memory (stackDir).
 * @param {{ storage?: "memory"|"disk", devtools?: boolean, stripe?: boolean, webhooks?: boolean, stripeRps?: number, gatewayRps?: number, dbLatencyMs?: number, stripeLatencyMs?: number, vars?: Record<string,string>, log?: (s: string) => void }} [opts]
 */
export async function startStack(opts = {}) {
  const log = opts.log ?? (() => {});
  const { dir, storage } = stackDir(opts.storage ?? stackDefaults.storage);
  const secrets = generateLocalSecrets();
  const authToken = `stack-${Math.random().toString(36).slice(2)}`;
  // The inspector's port too: wrangler's default (9229, then one more) is taken when another stack runs.
  const [dbPort, port, inspectorPort] = [await freePort(), await freePort(), await freePort()];
  const dbFile = join(dir, "billing.db");
  let db = await startDb(dbPort, dbFile, authToken, opts.dbLatencyMs ?? 0);
  const dbUrl = `http://127.0.0.1:${dbPort}`;
  await applyMigrations({ url: dbUrl, authToken });
  const base = `http://127.0.0.1:${port}`;
  const webhooks = opts.webhooks === false ? {} : { webhookUrl: `${base}/webhooks/stripe`, webhookSecret: secrets.STRIPE_WEBHOOK_SECRET };
  const emulator = opts.stripe === false ? null : await startStripeEmulator({ port: 0, rpsLimit: opts.stripeRps ?? 100, timeoutMs: 1500, latencyMs: opts.stripeLatencyMs ?? 0, ...webhooks });
  // Portal sessions need the account's default configuration (the Dashboard's customer portal settings).
  emulator?.savePortalDefault();
  const vars = {
    ENVIRONMENT: "development",
    TURSO_DATABASE_URL: dbUrl,
    TURSO_AUTH_TOKEN: authToken,
    AUTH_ISSUER: "office-billing-stack",
    AUTH_AUDIENCE: "office-billing-api",
    BILLING_PORTAL_RETURN_URL: `${base}/`,
    ...secrets,
    ...(emulator ? { STRIPE_SECRET_KEY: "sk_test_stackemulator0000", STRIPE_API_BASE: emulator.url, STRIPE_MAX_RPS: String(opts.gatewayRps ?? 95) } : {}),
    ...opts.vars,
  };
  // wrangler's temporary files (Miniflare's own objects' storage) inside the stack's directory: gone with it.
  const tmp = join(dir, "tmp");
  mkdirSync(tmp);
  const wranglerBin = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");
  const wrangler = spawn(
    process.execPath,
    [wranglerBin, "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", join(dir, "wrangler"), "--show-interactive-dev-session=false", "--test-scheduled", ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_LOG_PATH: join(dir, "logs"), ...(opts.devtools ? {} : NO_DEVTOOLS_PROXY), ...(storage === "memory" ? { TMPDIR: tmp } : {}) } },
  );
  let workerLog = "";
  wrangler.stdout.on("data", (d) => (workerLog = (workerLog + d).slice(-200_000)));
  wrangler.stderr.on("data", (d) => (workerLog = (workerLog + d).slice(-200_000)));
  await waitFor(async () => (await fetch(`${base}/health`)).status === 200, 120_000, "the Worker (wrangler dev)").catch(async (err) => {
    // Nothing of this stack outlives a failed start.
    try {
      process.kill(-wrangler.pid, "SIGTERM");
    } catch {
      wrangler.kill("SIGTERM");
    }
    db.kill("SIGTERM");
    await emulator?.close();
    throw new Error(`${err.message}\n${workerLog.slice(-3000)}`);
  });
  log(`stack: Worker ${base}, libSQL ${dbUrl}${emulator ? `, Stripe emulator ${emulator.url}` : ", no Stripe"}`);
  const sql = createClient({ url: dbUrl, authToken });
  const tokens = new Map();
  const token = (role, officeIds = []) => {
    const key = `${role}:${officeIds.join(",")}`;
    if (!tokens.has(key)) tokens.set(key, devToken(vars, { role, officeIds, sub: `stack-${role}`, ttlSeconds: 6 * 3600 }));
    return tokens.get(key);
  };

  return {
    base,
    dbUrl,
    /** "memory" or "disk": where the database and the runtime's storage are (stackDir). */
    storage,
    emulator,
    secrets,
    token,
    /** A libSQL client on the same database (to observe, never to change billing state). */
    sql,
    workerLog: () => workerLog,
    /** Round trips (pipelines) the libSQL server has answered so far. */
    async pipelines() {
      const stats = await (await fetch(`${dbUrl}/dev/stats`)).json();
      return stats.total.pipelines;
    },
    /** Kills the libSQL server at once (SIGKILL), as a crash would. */
    killDb() {
      db.kill("SIGKILL");
    },
    async restartDb() {
      db = await startDb(dbPort, dbFile, authToken, opts.dbLatencyMs ?? 0);
    },
    async stop() {
      try {
        process.kill(-wrangler.pid, "SIGTERM");
      } catch {
        wrangler.kill("SIGTERM");
      }
      db.kill("SIGTERM");
      await emulator?.close();
      sql.close();
      await sleep(500);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` over `items` with at most `concurrency` at once; results in order. */
export async function pool(items, concurrency, fn) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i], i);
    }),
  );
  return results;
}
