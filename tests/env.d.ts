import type { Env } from "../src/env";

declare module "cloudflare:test" {
  // The env the Worker tests see: the Worker's own bindings plus the harness's additions.
  interface ProvidedEnv extends Env {
    LIBSQL_SERVER_URL: string;
    /** JSON: the stand-in identity provider's private keys, to sign RS256/ES256 test tokens. */
    TEST_JWKS_PRIVATE_KEYS: string;
  }
}
