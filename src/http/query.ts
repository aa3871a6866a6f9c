import type { MiddlewareHandler } from "hono";
import type { App, AppEnv } from "./context";
import { ApiError } from "./problem";

type RouteDefinition = { method: string; path: string; request?: { query?: unknown } };

/** The query parameter names each registered route declares, keyed `METHOD /hono/:path`. */
export function declaredQueries(app: App): Map<string, ReadonlySet<string>> {
  const table = new Map<string, ReadonlySet<string>>();
  for (const d of app.openAPIRegistry.definitions) {
    if (d.type !== "route") continue;
    const route = (d as { route: RouteDefinition }).route;
    const shape = (route.request?.query as { shape?: Record<string, unknown> } | undefined)?.shape ?? {};
    table.set(`${route.method.toUpperCase()} ${route.path.replace(/\/\{([^}]+)\}/g, "/:$1")}`, new Set(Object.keys(shape)));
  }
  return table;
}

/**
 * Undeclared input is refused (docs/security.md, "Input"), for the query string in one place for
 * every route: a request whose query names a parameter its route does not declare (in its
 * OpenAPI `request.query` schema; a route without one declares none), or names one twice, is a
 * 400 VALIDATION_FAILED before the handler runs. The names are not echoed back (a name can carry
 * anything); the detail lists what the route declares. A path no route matches is left to the
 * 404.
 */
export function refuseUndeclaredQuery(app: App): MiddlewareHandler<AppEnv> {
  let table: Map<string, ReadonlySet<string>> | null = null;
  return async (c, next) => {
    const { search } = new URL(c.req.url);
    if (search === "") return next();
    // Hono has matched every handler of the request before the first middleware runs; the
    // route's own handlers are the ones registered for its method, not for ALL.
    const route = c.req.matchedRoutes.findLast((r) => r.method !== "ALL");
    if (!route) return next();
    table ??= declaredQueries(app);
    const declared = table.get(`${route.method} ${route.path}`) ?? new Set<string>();
    const names = [...new URLSearchParams(search).keys()];
    const undeclared = names.filter((n) => !declared.has(n)).length;
    const repeated = names.length - new Set(names).size;
    if (undeclared > 0 || repeated > 0) {
      const accepts = declared.size > 0 ? `it accepts only ${[...declared].join(", ")}, each at most once` : "it accepts none";
      throw new ApiError("VALIDATION_FAILED", `The request query has ${undeclared > 0 ? `${undeclared} parameter(s) this route does not declare` : "a repeated parameter"}; ${accepts}.`, {
        errors: [{ path: "query", message: undeclared > 0 ? "undeclared parameter" : "repeated parameter" }],
      });
    }
    return next();
  };
}
