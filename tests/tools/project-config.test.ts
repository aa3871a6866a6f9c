import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { cronJobs } from "../../src/jobs/scheduled";

const root = join(import.meta.dirname, "..", "..");

describe("project configuration", () => {
  it("wrangler.toml triggers exactly the crons the Worker handles", () => {
    const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
    const m = /^\s*crons\s*=\s*\[([^\]]*)\]/m.exec(toml);
    expect(m, "wrangler.toml has a [triggers] crons list").toBeTruthy();
    const crons = [...m![1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1]);
    expect(crons.sort()).toEqual(Object.keys(cronJobs).sort());
  });

  it("only src/stripe/ imports the stripe package or names Stripe's API host (the PHI boundary)", () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
    const files = walk(join(root, "src"));
    const offenders = files
      .filter((f) => !relative(root, f).startsWith(join("src", "stripe")))
      .filter((f) => /from\s+["']stripe["']|require\(["']stripe["']\)|import\(["']stripe["']\)|api\.stripe\.com|\.\.\/stripe\/client["']/.test(readFileSync(f, "utf8")));
    expect(offenders.map((f) => relative(root, f))).toEqual([]);
    // The check itself sees the gateway's import.
    expect(files.some((f) => /from\s+["']stripe["']/.test(readFileSync(f, "utf8")))).toBe(true);
  });

  it("dependencies point down: no domain layer (office, stripe, security, billing, db, jobs) imports from src/http/ (issue 14 item 7)", () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
    const layers = ["office", "stripe", "security", "billing", "db", "jobs", "analytics", "exports", "clinical"];
    const files = layers.flatMap((l) => walk(join(root, "src", l)));
    expect(files.length).toBeGreaterThan(20);
    const offenders: string[] = [];
    for (const file of files) {
      const source = readFileSync(file, "utf8");
      for (const m of source.matchAll(/(?:import|export)[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g)) {
        const spec = m[1] ?? m[2]!;
        if (!spec.startsWith(".")) continue;
        const target = relative(root, join(file, "..", spec));
        if (target === join("src", "http") || target.startsWith(join("src", "http") + "/")) offenders.push(`${relative(root, file)} → ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
    // The check itself sees imports: src/app.ts does import src/http/.
    expect(/from\s+["']\.\/http\/problem["']/.test(readFileSync(join(root, "src/app.ts"), "utf8"))).toBe(true);
  });

  it("wrangler.toml binds the Durable Objects with SQLite storage", () => {
    const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
    expect(toml).toMatch(/name\s*=\s*"OFFICE_BILLING"\s*\n\s*class_name\s*=\s*"OfficeBilling"/);
    expect(toml).toMatch(/name\s*=\s*"PLATFORM_AUDIT"\s*\n\s*class_name\s*=\s*"PlatformAudit"/);
    expect(toml).toMatch(/new_sqlite_classes\s*=\s*\["OfficeBilling", "PlatformAudit"\]/);
    expect(toml).toMatch(/name\s*=\s*"STRIPE_RATE_LIMITER"\s*\n\s*class_name\s*=\s*"StripeRateLimiter"/);
    expect(toml).toMatch(/new_sqlite_classes\s*=\s*\["StripeRateLimiter"\]/);
  });

  it("the test environment binds what production binds, less the queue consumer", () => {
    const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
    const [top, test] = toml.split(/^\[env\.test\]$/m) as [string, string];
    const bindings = (text: string) => [...text.matchAll(/(?:name|binding)\s*=\s*"([A-Z_]+)"/g)].map((m) => m[1]).sort();
    // [assets] is inherited by every environment (the test environment serves /docs too).
    expect(bindings(test)).toEqual(bindings(top).filter((b) => b !== "ASSETS"));
    expect(top).toMatch(/\[assets\]\s*\ndirectory\s*=\s*"\.\/node_modules\/swagger-ui-dist"\s*\nbinding\s*=\s*"ASSETS"/);
    expect(top).toMatch(/\[\[queues\.consumers\]\]/);
    expect(test).not.toMatch(/consumers/);
  });

  it(".dev.vars.example documents every variable the Worker validates", () => {
    const example = readFileSync(join(root, ".dev.vars.example"), "utf8");
    const config = readFileSync(join(root, "src/config.ts"), "utf8");
    const shape = /const shape = \{([\s\S]*?)\n\};/.exec(config)?.[1] ?? "";
    const names = [...shape.matchAll(/^\s{2}([A-Z][A-Z0-9_]+):/gm)].map((x) => x[1]);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(example, name).toMatch(new RegExp(`^# .+\\n${name}=`, "m"));
  });

  it("the drizzle schema and the committed migrations agree (drizzle-kit generates nothing new)", () => {
    const dir = mkdtempSync(join(tmpdir(), "migrations-check-"));
    try {
      cpSync(join(root, "migrations"), join(dir, "migrations"), { recursive: true });
      const before = readdirSync(join(dir, "migrations")).sort();
      const config = join(dir, "drizzle.config.mjs");
      writeFileSync(
        config,
        `export default { dialect: "turso", schema: "./src/db/schema.ts", out: ${JSON.stringify(relative(root, join(dir, "migrations")))} };`,
      );
      const run = spawnSync(process.execPath, [join(root, "node_modules/drizzle-kit/bin.cjs"), "generate", "--config", config], {
        cwd: root,
        encoding: "utf8",
      });
      expect(run.status).toBe(0);
      expect(run.stdout + run.stderr).toMatch(/No schema changes/);
      expect(readdirSync(join(dir, "migrations")).sort()).toEqual(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("every migration file is in the journal, in order", () => {
    const journal = JSON.parse(readFileSync(join(root, "migrations/meta/_journal.json"), "utf8")) as {
      entries: { idx: number; tag: string }[];
    };
    const files = readdirSync(join(root, "migrations"))
      .filter((f) => f.endsWith(".sql"))
      .sort();
    expect(journal.entries.map((e) => `${e.tag}.sql`)).toEqual(files);
    expect(journal.entries.map((e) => e.idx)).toEqual(files.map((_, i) => i));
  });
  it("the lockfile holds every platform's native packages (npm ci works on Linux, macOS and Windows)", () => {
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { optionalDependencies?: Record<string, string> }> };
    const paths = new Set(Object.keys(lock.packages));
    // Every optional dependency of every locked package resolves to a locked entry (npm's lookup: its own node_modules, then each parent's).
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const dep of Object.keys(entry.optionalDependencies ?? {})) {
        const candidates: string[] = [];
        for (let base = path; ; ) {
          candidates.push(`${base ? `${base}/` : ""}node_modules/${dep}`);
          const cut = base.lastIndexOf("/node_modules/");
          if (base === "") break;
          base = cut === -1 ? "" : base.slice(0, cut);
        }
        if (!candidates.some((c) => paths.has(c))) missing.push(`${path || "(root)"} → ${dep}`);
      }
    }
    expect(missing).toEqual([]);
    // The native packages this project runs on, for each platform a developer or CI may use.
    const platforms: Record<string, string[]> = {
      "@rollup/rollup-": ["linux-x64-gnu", "linux-arm64-gnu", "darwin-x64", "darwin-arm64", "win32-x64-msvc"],
      "@esbuild/": ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64", "win32-x64"],
      "@cloudflare/workerd-": ["linux-64", "linux-arm64", "darwin-64", "darwin-arm64", "windows-64"],
      "@libsql/": ["linux-x64-gnu", "linux-arm64-gnu", "darwin-x64", "darwin-arm64", "win32-x64-msvc"],
    };
    for (const [prefix, names] of Object.entries(platforms)) for (const name of names) expect(paths.has(`node_modules/${prefix}${name}`), `${prefix}${name}`).toBe(true);
  });

  it("the Worker takes now from src/clock.ts; Date.now() only where real elapsed time is meant", () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
    // Transport security (token and signature expiry), rate limiting, pacing, leases, retry timers and the alarm (real time);
    // the gateway's request-log row keeps the attempt's real time as its creation time (what the column's default was) and
    // a full pacer line's retry time (an alarm's). (The JWKS cache and its staleness bound run on now(), so tests can move them.)
    const allowed: Record<string, number> = { "src/clock.ts": 2, "src/security/jwt.ts": 1, "src/stripe/webhooks.ts": 2, "src/stripe/rate-limiter.ts": 3, "src/stripe/gateway.ts": 2, "src/jobs/invoicing-run.ts": 2, "src/office/stripe-sync.ts": 5 };
    const found: Record<string, number> = {};
    for (const f of walk(join(root, "src"))) {
      const n = (readFileSync(f, "utf8").match(/Date\.now\(\)/g) ?? []).length;
      if (n > 0) found[relative(root, f).split("\\").join("/")] = n;
    }
    expect(found).toEqual(allowed);
  });
});
