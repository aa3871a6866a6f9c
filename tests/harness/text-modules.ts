import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

/**
 * For tests that import the app in Node (vitest.tools.config.ts): the console's files imported by
 * src/http/console/ are text modules, bundled by wrangler's `[[rules]] type = "Text"`; here each
 * becomes a module exporting the same text, as wrangler would make it.
 */
export const consoleTextModules = {
  name: "console-text-modules",
  enforce: "pre" as const,
  resolveId(source: string, importer?: string) {
    if (!importer || !/src\/http\/console\/index\.ts$/.test(importer) || !/\.(?:m?js|css|html)$/.test(source)) return null;
    return `${resolve(dirname(importer), source)}?console-text`;
  },
  load(id: string) {
    return id.endsWith("?console-text") ? `export default ${JSON.stringify(readFileSync(id.slice(0, -"?console-text".length), "utf8"))};` : null;
  },
};
