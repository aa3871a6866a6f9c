// Reads .dev.vars (dotenv syntax, as wrangler does) so the Node-side tools use the same settings.
import { existsSync, readFileSync } from "node:fs";

/** @param {string} path @returns {Record<string, string>} */
export function readDevVars(path) {
  if (!existsSync(path)) return {};
  /** @type {Record<string, string>} */
  const vars = {};
  for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith("#")) continue;
    let value = m[2] ?? "";
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    vars[m[1]] = value;
  }
  return vars;
}
