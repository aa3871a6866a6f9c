import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Config } from "../config";
import type { Database } from "../db/client";
import type { Env } from "../env";

/** Per-request services, set by middleware in src/app.ts (never module-level singletons). */
export type Variables = {
  requestId: string;
  config: Config;
  db: Database;
};

export type AppEnv = { Bindings: Env; Variables: Variables };
export type App = OpenAPIHono<AppEnv>;
