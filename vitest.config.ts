import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { defineWorkersConfig } from "@cloudflare/vitest-pool-workers/config";

// The console's charting library and its API client (src/http/console/) are text modules: wrangler
// bundles them by the `[[rules]] type = "Text"` in wrangler.toml, and the pool reads the same rules,
// but loads such a module only from inside this project, which node_modules is not when it is a
// link (a git worktree sharing another checkout's). Here each becomes a module exporting the same text.
const require = createRequire(import.meta.url);
const VENDOR_TEXT: [RegExp, () => string][] = [
  [/(^|\/)chart\.js\/dist\/chart\.umd\.min\.js$/, () => require.resolve("chart.js").replace(/chart\.cjs$/, "chart.umd.min.js")],
  [/(^|\/)openapi-fetch\/dist\/index\.mjs$/, () => require.resolve("openapi-fetch/dist/index.mjs")],
];
// A test that calls the Worker through the typed client (tools/lib/api.mjs imports "openapi-fetch")
// needs that build as code, which the Text rule would make text: the bare import gets it as a
// module of its own (not a file path the rule matches).
const OPENAPI_FETCH_CODE = "\0openapi-fetch-code";
const vendorAsText = {
  name: "vendor-as-text",
  enforce: "pre" as const,
  resolveId: (source: string) => {
    if (source === "openapi-fetch") return OPENAPI_FETCH_CODE;
    const i = VENDOR_TEXT.findIndex(([re]) => re.test(source));
    return i < 0 ? null : `\0vendor-text-${i}`;
  },
  load: (id: string) => {
    if (id === OPENAPI_FETCH_CODE) return readFileSync(require.resolve("openapi-fetch/dist/index.mjs"), "utf8");
    const m = /^\0vendor-text-(\d+)$/.exec(id);
    return m ? `export default ${JSON.stringify(readFileSync(VENDOR_TEXT[Number(m[1])]![1](), "utf8"))};` : null;
  },
};

// Worker tests run inside workerd (the Workers runtime) through the vitest pool. The global setup
// (Node) starts the real local libSQL server and applies the migrations; its URL reaches the
// Worker's env through `inject`. Test files isolate themselves by seeding fresh tenants (random
// office and plan ids), so they can run in parallel and in any order against one database.
export default defineWorkersConfig({
  plugins: [vendorAsText],
  test: {
    include: ["tests/worker/**/*.test.ts"],
    globalSetup: ["./tests/harness/global-setup.ts"],
    setupFiles: ["./tests/harness/late-rejections.ts"],
    // `npm run test:worker` (tools/test-worker.mjs) runs the files in batches of four, one vitest
    // run each, with a watchdog: every file of one run starts at once in one workerd process, and
    // many isolates at once can livelock workerd's main thread on this 2-core machine (the script
    // says what was measured).
    // Every test file starts at once in one workerd runtime, and the first request of each file
    // loads the Worker's modules through vitest: on a busy 2-core machine (load ~10) a plain test
    // took over 30 s of wall time. Tests wait on conditions, never on speed; these bounds only
    // catch a hang. Heavy tests set their own, larger timeout.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    poolOptions: {
      workers: ({ inject }) => ({
        singleWorker: false,
        isolatedStorage: false,
        wrangler: { configPath: "./wrangler.toml", environment: "test" },
        miniflare: {
          bindings: {
            ENVIRONMENT: "test",
            TURSO_DATABASE_URL: inject("libsqlUrl"),
            TURSO_AUTH_TOKEN: inject("libsqlAuthToken"),
            LIBSQL_SERVER_URL: inject("libsqlServerUrl"),
            AUTH_ISSUER: "office-billing-test",
            AUTH_AUDIENCE: "office-billing-api",
            ...inject("secrets"),
            AUTH_JWKS_URL: inject("jwksUrl"),
            STRIPE_API_BASE: inject("stripeUrl"),
            STRIPE_SECRET_KEY: "sk_test_emulator0123456789",
            STRIPE_MAX_RPS: "500",
            STRIPE_TIMEOUT_MS: "10000", // a loaded machine can hold a request to the in-process emulator past 2 s
            BILLING_PORTAL_RETURN_URL: "https://app.office-billing.example/billing",
            // Stripe Tax and manual rates offered (docs/payment-plan.md §11.1); no office is taxed unless set (tests/worker/tax.test.ts).
            TAX_MODE: "stripe_tax",
            STRIPE_WEBHOOK_SECRET: inject("webhookSecrets").current,
            STRIPE_WEBHOOK_SECRET_PREVIOUS: inject("webhookSecrets").previous,
            TEST_JWKS_PRIVATE_KEYS: JSON.stringify(inject("jwksPrivateKeys")),
            CLINICAL_WEBHOOK_URL: inject("clinicalUrl"),
            CLINICAL_WEBHOOK_SECRET: inject("clinicalSecrets").current,
            CLINICAL_WEBHOOK_SECRET_PREVIOUS: inject("clinicalSecrets").previous,
          },
        },
      }),
    },
  },
});
