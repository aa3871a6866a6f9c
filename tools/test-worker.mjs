#!/usr/bin/env node
// `npm run test:worker`: the Worker suite (vitest.config.ts, inside workerd) in small batches of
// files, one vitest run per batch, with a watchdog for a wedged runtime.
//
// Why batches: every file of one vitest run starts at once in one workerd process (one isolate per
// file). With many isolates in one process on a 2-core machine, workerd's main thread can livelock:
// it sits at ~100% CPU inside V8's platform message pump, re-running cppgc's incremental sweep task
// while the concurrent sweeper job never completes (gdb: IoContext::runImpl's deferred pump →
// DefaultPlatform::PumpMessageLoop → IncrementalSweepTask::Run, sample after sample; RSS flat,
// no test finishing). Measured on this machine's kind: all 41 files at once never finished (zero
// files in 9 minutes); batches of 14 wedged; batches of 5 wedged once on CI. It is the runtime's
// livelock, not a test's: the same files pass when the run is started again.
//
// Why a second chance for module loading: when vite's dependency cache is (re)built while the
// batch's files load at once, workerd's module fallback service can fail a module ("Fallback
// service failed to fetch module", 'No such module "…/chai"'): seen once, on the first batch after
// `npm install` changed the dependencies. That is the test runtime failing to load vitest, never
// a test's verdict: such a batch is run once more, and says so. Nothing else is retried.
//
// Why a watchdog: a wedged run prints nothing, ever. A run that prints nothing for `STALL_SECONDS`
// (longer than any test's or hook's own timeout, so a slow test fails by its timeout first) is
// killed with its whole process group (vitest, workerd, the libSQL server, the Stripe emulator)
// and started again, up to `STALL_RETRIES` times; each stall is reported. A test that fails is
// never retried: its batch fails and so does the command.
//
// Usage: node tools/test-worker.mjs [--batch N] [--plan] [file filters...]
//   --plan prints the batches and runs nothing. WORKER_TEST_RUNNER (tests only) names a script run
//   in place of vitest with the same arguments.
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const USAGE = `usage: npm run test:worker -- [--batch <n>] [--plan] [filter ...]

Runs the Worker suite (vitest.config.ts, in workerd) in batches of files, one vitest run per batch.

  --batch <n>   files per batch (default 4; WORKER_TEST_BATCH)
  --plan        print the batches and run nothing
  filter        run only the files whose path contains one of these
  --help, -h    this text

A batch silent for WORKER_TEST_STALL_SECONDS (default 240) is taken for a wedged workerd: it is
killed with its process group and started again, at most WORKER_TEST_STALL_RETRIES (default 2)
times. A batch whose runtime failed to load a module of vitest's runs once more. A failing test
is never retried.
`;
const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(USAGE);
  process.exit(0);
}
let batchSize = Number(process.env.WORKER_TEST_BATCH ?? 4);
let planOnly = false;
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--batch") batchSize = Number(args[++i]);
  else if (args[i] === "--plan") planOnly = true;
  else if (args[i].startsWith("-")) {
    process.stderr.write(`Unknown option '${args[i]}'\n${USAGE}`);
    process.exit(2);
  } else filters.push(args[i]);
}
if (!Number.isInteger(batchSize) || batchSize < 1) {
  console.error("--batch takes a whole number of files, at least 1");
  process.exit(2);
}
// vitest.config.ts: testTimeout 120 s, hookTimeout 180 s. Silence past both is a wedge.
const STALL_SECONDS = Number(process.env.WORKER_TEST_STALL_SECONDS ?? 240);
const STALL_RETRIES = Number(process.env.WORKER_TEST_STALL_RETRIES ?? 2);
const MODULE_LOAD_FAILURE = /Fallback service failed to fetch module|Error running worker: Error: No such module "/;

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith(".test.ts")) out.push(relative(root, path));
  }
  return out;
}

/** Files in batches; the heaviest files (by size, a fair proxy here) spread across batches. */
function batches(files, size) {
  const count = Math.ceil(files.length / size);
  const bySize = [...files].sort((a, b) => statSync(join(root, b)).size - statSync(join(root, a)).size || a.localeCompare(b));
  const out = Array.from({ length: count }, () => []);
  bySize.forEach((file, i) => {
    // Snake order: 0..n-1, n-1..0, … keeps each batch's total size even.
    const lap = Math.floor(i / count);
    const slot = lap % 2 === 0 ? i % count : count - 1 - (i % count);
    out[slot].push(file);
  });
  return out.filter((b) => b.length > 0).map((b) => b.sort());
}

function runBatch(files) {
  return new Promise((resolve) => {
    const runner = process.env.WORKER_TEST_RUNNER ?? join(root, "node_modules/vitest/vitest.mjs");
    const child = spawn(process.execPath, [runner, "run", ...files], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: a wedged workerd goes with it
      env: process.env,
    });
    let last = Date.now();
    let moduleLoadFailed = false;
    const seen = (chunk) => {
      last = Date.now();
      if (MODULE_LOAD_FAILURE.test(chunk.toString())) moduleLoadFailed = true;
    };
    child.stdout.on("data", (chunk) => (seen(chunk), process.stdout.write(chunk)));
    child.stderr.on("data", (chunk) => (seen(chunk), process.stderr.write(chunk)));
    let stalled = false;
    const watchdog = setInterval(() => {
      if (Date.now() - last < STALL_SECONDS * 1000) return;
      stalled = true;
      clearInterval(watchdog);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 1000);
    child.on("exit", (code, signal) => {
      clearInterval(watchdog);
      // Anything the group left behind (a workerd that outlived vitest) goes too.
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      resolve({ code: code ?? 1, signal, stalled, moduleLoadFailed });
    });
  });
}

const all = testFiles(join(root, "tests/worker")).sort();
const chosen = filters.length > 0 ? all.filter((f) => filters.some((p) => f.includes(p))) : all;
if (chosen.length === 0) {
  console.error(`no Worker test file matches ${filters.join(", ")}`);
  process.exit(1);
}
const planned = batches(chosen, batchSize);
if (planOnly) {
  for (const [i, files] of planned.entries()) console.log(`batch ${i + 1}: ${files.join(" ")}`);
  process.exit(0);
}
const started = Date.now();
const report = [];
for (const [i, files] of planned.entries()) {
  const label = `batch ${i + 1}/${planned.length}`;
  let attempt = 0;
  let reloaded = false;
  for (;;) {
    attempt++;
    console.log(`\n[test:worker] ${label}${attempt > 1 ? `, attempt ${attempt}` : ""}: ${files.join(" ")}`);
    const result = await runBatch(files);
    if (result.stalled && attempt <= STALL_RETRIES) {
      console.log(`[test:worker] ${label}: no output for ${STALL_SECONDS} s (workerd wedged); killed, starting it again`);
      report.push({ label, outcome: "stalled, retried" });
      continue;
    }
    if (!result.stalled && result.code !== 0 && result.moduleLoadFailed && !reloaded) {
      reloaded = true;
      console.log(`[test:worker] ${label}: the test runtime failed to load a module (vitest's, not a test's); running it once more`);
      report.push({ label, outcome: "module load failed, retried" });
      continue;
    }
    const outcome = result.stalled ? `stalled ${attempt} times` : result.code === 0 ? "passed" : `failed (exit ${result.code})`;
    report.push({ label, outcome, files });
    break;
  }
}
console.log(`\n[test:worker] ${chosen.length} files in ${planned.length} batches, ${Math.round((Date.now() - started) / 1000)} s`);
for (const r of report) console.log(`[test:worker] ${r.label}: ${r.outcome}`);
const failed = report.filter((r) => r.files && r.outcome !== "passed");
if (failed.length > 0) {
  console.log(`[test:worker] FAILED: ${failed.map((r) => `${r.label} (${r.files.join(", ")})`).join("; ")}`);
  process.exit(1);
}
