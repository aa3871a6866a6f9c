import { defineConfig } from "vitest/config";

// The browser test of /docs: Node starts `wrangler dev` and drives Debian's chromium through
// playwright-core (no browser download). `npm run test:browser`; part of `npm test`.
export default defineConfig({
  test: {
    include: ["tests/browser/**/*.test.ts"],
    environment: "node",
    testTimeout: 90_000,
    hookTimeout: 120_000,
  },
});
