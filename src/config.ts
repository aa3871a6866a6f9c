import { z } from "zod";
import type { Env } from "./env";

/**
 * The configuration the Worker needs, validated with zod before any route runs. Secrets come only
 * from the environment (.dev.vars locally, `wrangler secret put` in production); an error names
 * the offending variable, never its value.
 */
const configSchema = z
  .object({
    ENVIRONMENT: z.enum(["development", "test", "production"]),
    TURSO_DATABASE_URL: z
      .string()
      .url()
      .refine((u) => /^(libsql|https?|wss?):\/\//.test(u), "must be a libsql://, https://, http://, wss:// or ws:// URL"),
    TURSO_AUTH_TOKEN: z.string().min(1).optional(),
  })
  .superRefine((env, ctx) => {
    if (env.ENVIRONMENT === "production") {
      if (!env.TURSO_AUTH_TOKEN) {
        ctx.addIssue({ code: "custom", path: ["TURSO_AUTH_TOKEN"], message: "is required in production" });
      }
      if (/^(http|ws):\/\//.test(env.TURSO_DATABASE_URL)) {
        ctx.addIssue({ code: "custom", path: ["TURSO_DATABASE_URL"], message: "must use TLS in production" });
      }
    }
  });

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  readonly variables: string[];
  constructor(issues: { variable: string; problem: string }[]) {
    super(`invalid configuration: ${issues.map((i) => `${i.variable} ${i.problem}`).join("; ")}`);
    this.name = "ConfigError";
    this.variables = issues.map((i) => i.variable);
  }
}

const cache = new WeakMap<object, Config>();

/** Validates the environment once per env object; throws ConfigError naming the variables. */
export function loadConfig(env: Env): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape ?? {})) raw[key] = env[key] === "" ? undefined : env[key];
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => ({
        variable: String(issue.path[0] ?? "environment"),
        // zod messages describe the expectation, never echo the received value.
        problem: raw[String(issue.path[0])] === undefined ? "is missing" : `is invalid (${issue.message})`,
      })),
    );
  }
  cache.set(env, parsed.data);
  return parsed.data;
}
