import { defineConfig } from "vitest/config";

// Unit tests of the pure rules (src/billing/, the PHI guard and payload schemas of src/stripe/):
// no database, no Worker, no I/O — thousands of generated cases each. They run in plain Node, so
// their CPU-bound property runs never hold up the one workerd runtime the Worker tests share (a
// long synchronous run there starved the other files' module loading at start-up and wedged the
// run). `npx vitest run --config vitest.unit.config.ts` (or `npm run test:unit`).
export default defineConfig({
  test: {
    include: ["tests/unit/**/*.test.ts"],
    environment: "node",
    testTimeout: 120_000,
  },
});
