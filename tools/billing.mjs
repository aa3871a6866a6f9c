#!/usr/bin/env node
// @ts-check
// The operator CLI of the billing API, against a local or deployed instance:
//   npm run billing -- run --date <YYYY-MM-DD> [--dry-run] [--url <base>]
//   npm run billing -- office <officeId> [--url <base>]
// The platform_admin token comes from BILLING_TOKEN; against a local instance without it, a dev
// token is minted with .dev.vars' AUTH_DEV_SECRET (as `npm run token` does). Every call goes
// through the typed client generated from the API's OpenAPI document (tools/lib/api.mjs,
// client/schema.d.ts), checked by `tsc -p tsconfig.clients.json`.
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ApiProblem, must, typedClient } from "./lib/api.mjs";
import { now, utcDate } from "./lib/clock.mjs";
import { operatorToken } from "./token.mjs";

const USAGE = `usage:
  npm run billing -- run --date <YYYY-MM-DD> [--dry-run] [--url <base>]
      closes every billing cycle that ended by the start of that date in its office's time
      zone (today included), office by office, with a progress bar, then prints a summary;
      --dry-run only lists what would be invoiced; a date that has not begun anywhere is refused
  npm run billing -- office <officeId> [--url <base>]
      prints the office's status, current usage and last invoices
  npm run billing -- --help (-h)
      this text
environment: BILLING_TOKEN (a platform_admin bearer token); BILLING_URL (default http://127.0.0.1:8787)`;

/** Offices closed per request: small enough for a live progress bar. */
const CHUNK = 10;

/** An output stream (stdout, stderr, or a test's). @typedef {NodeJS.WritableStream & { isTTY?: boolean }} Out */

/** @param {number} amount minor units @param {string} currency */
const money = (amount, currency) => `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;

/** @param {(string | number)[][]} rows @param {string[]} headers */
function table(rows, headers) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (/** @type {(string | number)[]} */ cells) => cells.map((c, i) => (typeof c === "number" ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join("  ");
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** @param {number} done @param {number} total @param {string} label @param {Out} stream */
function progress(done, total, label, stream) {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ${label}`;
  if (stream.isTTY) stream.write(`\r${bar}`);
  else stream.write(`${bar}\n`);
}

/**
 * @param {import("./lib/api.mjs").TypedClient} api
 * @param {{ date?: string, dryRun: boolean }} args
 * @param {Out} out @param {Out} err
 */
async function runCommand(api, { date, dryRun }, out, err) {
  if (!date || !/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) throw new Error("--date YYYY-MM-DD is required");
  // The latest date on Earth is UTC+14's: a date after it has begun nowhere, and nothing has ended by its start.
  const latest = utcDate(now() + 14 * 3_600_000);
  if (date > latest) throw new Error(`${date} has not begun in any time zone yet (it is ${utcDate(now())} in UTC): a run closes only cycles that have ended; give today or an earlier date`);
  // What is due: the dry run lists every office with a cycle that ended by then.
  const plan = await must(api.POST("/v1/admin/invoicing-runs", { body: { date, dryRun: true } }));
  const due = plan.offices.filter((o) => o.invoices.length > 0);
  out.write(`${due.length} office(s) with cycles ended by the start of ${date} (in each office's time zone)${dryRun ? " — dry run, nothing changes" : ""}\n`);
  let results = due;
  /** @type {{ officeId: string, error: string }[]} */
  const failed = [];
  if (!dryRun && due.length > 0) {
    results = [];
    progress(0, due.length, "offices closed", err);
    for (let i = 0; i < due.length; i += CHUNK) {
      const chunk = due.slice(i, i + CHUNK).map((o) => o.officeId);
      try {
        const res = await must(api.POST("/v1/admin/invoicing-runs", { body: { date, officeIds: chunk } }));
        results.push(...res.offices);
      } catch (e) {
        failed.push(...chunk.map((officeId) => ({ officeId, error: e instanceof Error ? e.message : String(e) })));
      }
      progress(Math.min(i + CHUNK, due.length), due.length, "offices closed", err);
    }
    if (err.isTTY) err.write("\n");
  }
  /** @type {[string, string, string, number][]} */
  const rows = results.flatMap((o) => o.invoices.map((inv) => /** @type {[string, string, string, number]} */ ([o.officeId, `${inv.periodStart} → ${inv.periodEnd}`, inv.invoiceId ?? "(new)", inv.total])));
  if (rows.length > 0) out.write(`\n${table(rows, ["office", "period", "invoice", "total (minor units)"])}\n`);
  const invoices = rows.length;
  const total = rows.reduce((n, r) => n + r[3], 0);
  out.write(
    `\n${table(
      [
        ["offices", results.length],
        ["invoices " + (dryRun ? "to finalize" : "finalized"), invoices],
        ["total (minor units)", total],
        ["failed offices", failed.length],
      ],
      ["summary", "value"],
    )}\n`,
  );
  for (const f of failed) out.write(`failed: ${f.officeId}: ${f.error}\n`);
  return failed.length === 0 ? 0 : 1;
}

/** @param {import("./lib/api.mjs").TypedClient} api @param {string | undefined} officeId @param {Out} out */
async function officeCommand(api, officeId, out) {
  if (!officeId || !/^off_[0-9a-f]{32}$/.test(officeId)) throw new Error("an office id (off_…) is required");
  const [office, usage, invoices] = await Promise.all([
    must(api.GET("/v1/offices/{officeId}", { params: { path: { officeId } } })),
    must(api.GET("/v1/offices/{officeId}/usage", { params: { path: { officeId } } })),
    must(api.GET("/v1/offices/{officeId}/invoices", { params: { path: { officeId }, query: { limit: 5 } } })),
  ]);
  out.write(`${office.legalName} (${office.id})\n`);
  out.write(
    `${table(
      [
        ["status", office.status],
        ["time zone", office.timeZone],
        ["plan version", office.planVersionId + (office.pendingPlanVersionId ? ` (next cycle: ${office.pendingPlanVersionId})` : "")],
        ["current cycle", office.currentCycle ? `${office.currentCycle.start} → ${office.currentCycle.end}${office.cancelAtPeriodEnd ? " (cancels at its end)" : ""}` : "none (canceled)"],
        ["billable patients", usage.billablePatients],
        ["current invoice so far", usage.currency ? money(usage.projected.total, usage.currency) : "—"],
      ],
      ["office", ""],
    )}\n\n`,
  );
  const rows = invoices.data.map((i) => [i.id, i.kind, i.status, `${i.periodStart} → ${i.periodEnd}`, money(i.total, i.currency), i.stripeState]);
  out.write(rows.length ? `${table(rows, ["invoice", "kind", "status", "period", "total", "stripe"])}\n` : "no invoices yet\n");
  return 0;
}

/** @param {string[]} argv @param {Out} [out] @param {Out} [err] @returns {Promise<number>} */
export async function main(argv, out = process.stdout, err = process.stderr) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { date: { type: "string" }, "dry-run": { type: "boolean", default: false }, url: { type: "string" }, help: { type: "boolean", short: "h", default: false } },
    });
  } catch (e) {
    err.write(`billing: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, arg] = positionals;
  if (values.help) {
    out.write(`${USAGE}\n`);
    return 0;
  }
  if (!command || !["run", "office"].includes(command)) {
    err.write(`${command ? `billing: unknown command '${command}'\n` : ""}${USAGE}\n`);
    return 2;
  }
  const url = values.url ?? process.env.BILLING_URL ?? "http://127.0.0.1:8787";
  try {
    const api = typedClient(url, operatorToken(url, "dev-operator"));
    return command === "run" ? await runCommand(api, { date: values.date, dryRun: values["dry-run"] }, out, err) : await officeCommand(api, arg, out);
  } catch (e) {
    err.write(`billing: ${e instanceof ApiProblem ? e.message : e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
