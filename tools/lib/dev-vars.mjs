// Reads .dev.vars (dotenv syntax, as wrangler does) so the Node-side tools use the same settings.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { generateLocalSecrets } from "./secrets.mjs";

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

/**
 * Creates .dev.vars from the example, or adds the variables a newer example has and it lacks:
 * each empty secret gets a fresh random value. Existing values are never changed.
 * @param {string} path @param {string} examplePath
 */
export function ensureDevVars(path, examplePath) {
  const secrets = generateLocalSecrets();
  const have = readDevVars(path);
  const example = readFileSync(examplePath, "utf8");
  if (!existsSync(path)) {
    const text = example.replace(/^([A-Z_]+)=$/gm, (line, name) => (secrets[name] ? `${name}=${secrets[name]}` : line));
    writeFileSync(path, text, { mode: 0o600 });
    console.log("dev: created .dev.vars from .dev.vars.example with fresh local secrets");
    return;
  }
  const missing = [];
  for (const m of example.matchAll(/^(#[^\n]*\n)?([A-Z_]+)=(.*)$/gm)) {
    const [, comment, name, value] = m;
    if (name in have) continue;
    missing.push(`${comment ?? ""}${name}=${value === "" && secrets[name] ? secrets[name] : value}`);
  }
  if (missing.length > 0) {
    appendFileSync(path, `\n${missing.join("\n")}\n`);
    console.log(`dev: added ${missing.length} new variable(s) to .dev.vars from .dev.vars.example`);
  }
}
