import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { App } from "../context";
import { problemResponses } from "../problem";

const HealthSchema = z
  .object({
    status: z.enum(["ok", "degraded"]).openapi({ example: "ok" }),
    db: z.enum(["ok", "unreachable"]).openapi({ example: "ok" }),
  })
  .openapi("Health");

export type Health = z.infer<typeof HealthSchema>;

/** How long the database may take to answer a health probe before it counts as unreachable. */
export const HEALTH_DB_TIMEOUT_MS = 3000;

export const route = createRoute({
  method: "get",
  path: "/health",
  operationId: "getHealth",
  tags: ["Health"],
  // Public: no token (explicit, so generated clients and linters know).
  security: [],
  summary: "Liveness and database reachability",
  description: "No authentication. 200 when the database answers, 503 when it does not.",
  responses: {
    200: { description: "The service and its database answer.", content: { "application/json": { schema: HealthSchema } } },
    503: {
      description: "The database does not answer.",
      content: { "application/json": { schema: HealthSchema, example: { status: "degraded", db: "unreachable" } } },
    },
    // 400: a body on GET/HEAD (BODY_NOT_ALLOWED), refused before the route runs.
    ...problemResponses(400, 500),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const reachable = await probe(() => c.var.db.run(sql`select 1`));
    return reachable ? c.json({ status: "ok", db: "ok" } as const, 200) : c.json({ status: "degraded", db: "unreachable" } as const, 503);
  });
}

async function probe(query: () => Promise<unknown>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), HEALTH_DB_TIMEOUT_MS);
  });
  try {
    return await Promise.race([query().then(() => true as const), timeout]);
  } catch (err) {
    console.warn(JSON.stringify({ level: "warn", msg: "health: database unreachable", error: err instanceof Error ? err.name : "unknown" }));
    return false;
  } finally {
    clearTimeout(timer);
  }
}
