// Command-line parsing shared by the project's scripts: node:util's parseArgs (strict) plus
// `--help`/`-h`, which prints the script's usage to stdout and exits 0 before anything starts, and
// an unknown or malformed option, which prints the error and the usage to stderr and exits 2.
import { parseArgs } from "node:util";

/**
 * @param {string} name the script's name, prefixed to error messages
 * @param {string} usage the whole usage text (every option)
 * @param {import("node:util").ParseArgsConfig["options"]} options parseArgs options (without help)
 * @param {{ argv?: string[], allowPositionals?: boolean }} [opts]
 * @returns {{ values: Record<string, any>, positionals: string[] }}
 */
export function parseCli(name, usage, options, { argv = process.argv.slice(2), allowPositionals = false } = {}) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h", default: false } }, strict: true, allowPositionals });
  } catch (err) {
    usageError(name, usage, err instanceof Error ? err.message : String(err));
  }
  if (parsed.values.help) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  return parsed;
}

/**
 * Prints `<name>: <message>` and the usage to stderr and exits 2.
 * @param {string} name @param {string} usage @param {string} [message] @returns {never}
 */
export function usageError(name, usage, message) {
  process.stderr.write(`${message ? `${name}: ${message}\n` : ""}${usage.trimEnd()}\n`);
  process.exit(2);
}
