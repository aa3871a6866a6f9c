import type { Env } from "../src/env";

declare module "cloudflare:test" {
  // The env the Worker tests see: the Worker's own bindings plus the harness's additions.
  interface ProvidedEnv extends Env {
    LIBSQL_SERVER_URL: string;
  }
}
