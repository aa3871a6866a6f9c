import { defineConfig } from "vitest/config";
import { consoleTextModules } from "./tests/harness/text-modules";

// Tests of the Node tooling (tools/), e.g. the local libSQL server. They run in plain Node, not in
// workerd: `npx vitest run --config vitest.tools.config.ts` (or `npm run test:tools`).
export default defineConfig({
  plugins: [consoleTextModules],
  // The app's modules loaded in Node (e.g. to build the OpenAPI document): workerd's base classes.
  resolve: { alias: { "cloudflare:workers": new URL("./tests/harness/cloudflare-workers-node.ts", import.meta.url).pathname } },
  test: {
    include: ["tests/tools/**/*.test.ts"],
    environment: "node",
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
