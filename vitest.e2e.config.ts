import { defineConfig } from "vitest/config";

// End-to-end tests with real processes: `npm run dev` (libSQL server, Stripe emulator, wrangler
// dev) seeding its demo and the operator CLI against it; /docs in Debian's chromium through
// playwright-core (no browser download). `npm run test:e2e`; part of `npm test`.
export default defineConfig({
  test: {
    include: ["tests/e2e/**/*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Each file starts its own Worker; two at once would share this machine's two cores.
    fileParallelism: false,
  },
});
