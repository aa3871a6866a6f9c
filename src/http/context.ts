import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Config } from "../config";
import type { Database } from "../db/client";
import type { Env } from "../env";
import type { Principal } from "../security/auth";

/** Per-request services, set by middleware in src/app.ts (never module-level singletons). */
export type Variables = {
  requestId: string;
  config: Config;
  db: Database;
  /** Set by `authenticate()` on /v1 routes. */
  principal: Principal;
};

export type AppEnv = { Bindings: Env; Variables: Variables };
export type App = OpenAPIHono<AppEnv>;
