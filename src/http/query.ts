import type { MiddlewareHandler } from "hono";
import type { App, AppEnv } from "./context";
import { ApiError } from "./problem";

/** A parameter name that is echoed back: letters and underscores only (a name with digits or punctuation may be an identifier). */
const NAMEABLE = /^[A-Za-z][A-Za-z_]{0,39}$/;

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
 * 400 VALIDATION_FAILED before the handler runs, each offending parameter an `errors` entry. Like
 * an undeclared body field, a parameter is named in its entry — but only when its name is plain
 * letters and underscores; any other name (digits, punctuation: it may be an identifier) is
 * reported as `query`, never echoed. The detail lists what the route declares. A path no route matches is left to the
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
    const seen = new Set<string>();
    const errors: { path: string; message: string }[] = [];
    for (const name of names) {
      const problem = !declared.has(name) ? "undeclared parameter" : seen.has(name) ? "repeated parameter" : null;
      seen.add(name);
      if (problem) errors.push({ path: NAMEABLE.test(name) ? name : "query", message: problem });
    }
    if (errors.length > 0) {
      const accepts = declared.size > 0 ? `it accepts only ${[...declared].join(", ")}, each at most once` : "it accepts none";
      throw new ApiError("VALIDATION_FAILED", `The request query has ${errors.length} parameter(s) this route does not take; ${accepts}.`, { errors });
    }
    return next();
  };
}
