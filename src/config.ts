import { z } from "zod";
import type { Env } from "./env";

/**
 * The configuration the Worker needs, validated with zod before any route runs. Secrets come only
 * from the environment (.dev.vars locally, `wrangler secret put` in production); an error names
 * the offending variable, never its value. Each variable is documented in .dev.vars.example.
 */
const secret = (min: number) => z.string().min(min, `must be at least ${min} characters`);
const keyringSpec = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9_\-+/]{43}=?(,[A-Za-z0-9_-]{1,32}:[A-Za-z0-9_\-+/]{43}=?)*$/, "must be <keyId>:<base64 of 32 bytes>[,<keyId>:<base64>...]");

const shape = {
  ENVIRONMENT: z.enum(["development", "test", "production"]),
  TURSO_DATABASE_URL: z
    .string()
    .url()
    .refine((u) => /^(libsql|https?|wss?):\/\//.test(u), "must be a libsql://, https://, http://, wss:// or ws:// URL"),
  TURSO_AUTH_TOKEN: z.string().min(1).optional(),
  AUTH_ISSUER: z.string().min(1),
  AUTH_AUDIENCE: z.string().min(1),
  AUTH_JWKS_URL: z.string().url().optional(),
  AUTH_DEV_SECRET: secret(32).optional(),
  /** Seconds the last fetched JWKS keys stay accepted while the identity provider is unreachable (default 86400). */
  JWKS_MAX_STALE_SECONDS: z.coerce.number().int().min(0).max(7 * 24 * 3600).optional(),
  PATIENT_KEY_SECRET: secret(32),
  /**
   * Later links of the patient pseudonym chain, oldest first: `<secret v2>[,<secret v3>...]`, each
   * 32+ characters (src/security/crypto.ts advancePatientKey). Appending one rotates the key;
   * none is ever removed (docs/operations.md, "Rotating PATIENT_KEY_SECRET").
   */
  PATIENT_KEY_CHAIN: z.string().regex(/^[^,\s]{32,}(,[^,\s]{32,})*$/, "must be <secret>[,<secret>...], each at least 32 characters, no spaces").optional(),
  DATA_ENCRYPTION_KEY: keyringSpec,
  DATA_INDEX_KEY: secret(32),
  AUDIT_KEY: keyringSpec,
  /** The previous lookup-index key, still tried by lookups while `npm run keys:rotate -- index` re-indexes. */
  DATA_INDEX_KEY_PREVIOUS: secret(32).optional(),
  STRIPE_SECRET_KEY: z
    .string()
    .regex(/^(sk|rk)_(test|live)_[A-Za-z0-9]{10,}$/, "must be a Stripe secret (sk_) or restricted (rk_) key")
    .optional(),
  STRIPE_WEBHOOK_SECRET: z.string().regex(/^whsec_[A-Za-z0-9+/=]{10,}$/, "must be a Stripe webhook secret (whsec_)").optional(),
  STRIPE_WEBHOOK_SECRET_PREVIOUS: z.string().regex(/^whsec_[A-Za-z0-9+/=]{10,}$/, "must be a Stripe webhook secret (whsec_)").optional(),
  STRIPE_API_BASE: z.string().url().optional(),
  STRIPE_MAX_RPS: z.coerce.number().int().min(1).max(1000).optional(),
  STRIPE_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).optional(),
  STRIPE_OUTBOX_RETRY_MS: z.coerce.number().int().min(100).max(3_600_000).optional(),
  BILLING_PORTAL_RETURN_URL: z.string().url().optional(),
  /** Where Stripe's hosted page for adding a payment method returns an office admin (default BILLING_PORTAL_RETURN_URL). */
  PAYMENT_SETUP_SUCCESS_URL: z.string().url().optional(),
  PAYMENT_SETUP_CANCEL_URL: z.string().url().optional(),
  /** Days an invoice sent for payment by e-mail (an office without a payment method) has until it is due (default 14; docs/payment-plan.md §10). */
  SEND_INVOICE_DAYS_UNTIL_DUE: z.coerce.number().int().min(1).max(90).optional(),
  /** What tax the Stripe account offers offices (docs/payment-plan.md §11.1): `none` (default), `manual` (our rates), `stripe_tax` (Stripe Tax, and our rates). */
  TAX_MODE: z.enum(["none", "stripe_tax", "manual"]).optional(),
  /** Where events for the clinical application are POSTed (docs/clinical-events.md); unset: events are stored, not delivered. */
  CLINICAL_WEBHOOK_URL: z.string().url().optional(),
  /** The HMAC-SHA256 secret of the `Billing-Signature` header, and the previous one during a rotation (both sign). */
  CLINICAL_WEBHOOK_SECRET: secret(32).optional(),
  CLINICAL_WEBHOOK_SECRET_PREVIOUS: secret(32).optional(),
};

const configSchema = z.object(shape).superRefine((env, ctx) => {
  const problem = (variable: keyof typeof shape, message: string) => ctx.addIssue({ code: "custom", path: [variable], message });
  if (env.ENVIRONMENT === "production") {
    if (!env.TURSO_AUTH_TOKEN) problem("TURSO_AUTH_TOKEN", "is required in production");
    if (/^(http|ws):\/\//.test(env.TURSO_DATABASE_URL)) problem("TURSO_DATABASE_URL", "must use TLS in production");
    if (!env.AUTH_JWKS_URL) problem("AUTH_JWKS_URL", "is required in production");
    else if (!env.AUTH_JWKS_URL.startsWith("https://")) problem("AUTH_JWKS_URL", "must be https in production");
    if (env.AUTH_DEV_SECRET) problem("AUTH_DEV_SECRET", "must not be set in production (HS256 dev tokens are refused there)");
    if (env.STRIPE_API_BASE && !env.STRIPE_API_BASE.startsWith("https://")) problem("STRIPE_API_BASE", "must be https in production");
    if (env.BILLING_PORTAL_RETURN_URL && !env.BILLING_PORTAL_RETURN_URL.startsWith("https://")) problem("BILLING_PORTAL_RETURN_URL", "must be https in production");
    for (const v of ["PAYMENT_SETUP_SUCCESS_URL", "PAYMENT_SETUP_CANCEL_URL"] as const) if (env[v] && !env[v].startsWith("https://")) problem(v, "must be https in production");
    if (env.CLINICAL_WEBHOOK_URL && !env.CLINICAL_WEBHOOK_URL.startsWith("https://")) problem("CLINICAL_WEBHOOK_URL", "must be https in production");
  }
  if (env.CLINICAL_WEBHOOK_URL && !env.CLINICAL_WEBHOOK_SECRET) problem("CLINICAL_WEBHOOK_SECRET", "is required when CLINICAL_WEBHOOK_URL is set");
  if (env.CLINICAL_WEBHOOK_SECRET_PREVIOUS && !env.CLINICAL_WEBHOOK_SECRET) problem("CLINICAL_WEBHOOK_SECRET", "is required when CLINICAL_WEBHOOK_SECRET_PREVIOUS is set");
  if (env.CLINICAL_WEBHOOK_SECRET_PREVIOUS && env.CLINICAL_WEBHOOK_SECRET_PREVIOUS === env.CLINICAL_WEBHOOK_SECRET) problem("CLINICAL_WEBHOOK_SECRET_PREVIOUS", "equals CLINICAL_WEBHOOK_SECRET");
  if (env.PATIENT_KEY_CHAIN && new Set([env.PATIENT_KEY_SECRET, ...env.PATIENT_KEY_CHAIN.split(",")]).size !== env.PATIENT_KEY_CHAIN.split(",").length + 1) {
    problem("PATIENT_KEY_CHAIN", "repeats a secret of the chain (each version needs a new one)");
  }
  if (env.DATA_INDEX_KEY_PREVIOUS && env.DATA_INDEX_KEY_PREVIOUS === env.DATA_INDEX_KEY) problem("DATA_INDEX_KEY_PREVIOUS", "equals DATA_INDEX_KEY");
  const keyIds = env.DATA_ENCRYPTION_KEY.split(",").map((k) => k.split(":")[0]);
  if (new Set(keyIds).size !== keyIds.length) problem("DATA_ENCRYPTION_KEY", "lists a key id twice");
  const auditKeyIds = env.AUDIT_KEY.split(",").map((k) => k.split(":")[0]);
  if (new Set(auditKeyIds).size !== auditKeyIds.length) problem("AUDIT_KEY", "lists a key id twice");
  if (!env.AUTH_DEV_SECRET && !env.AUTH_JWKS_URL) {
    problem("AUTH_DEV_SECRET", "is required in development and test unless AUTH_JWKS_URL is set");
  }
});

export type Config = z.infer<typeof configSchema>;

/**
 * Requests per second the gateway allows itself towards Stripe, for the whole service: the
 * configured value, else Stripe's limits with a margin (live mode 100/s, test mode 25/s).
 */
export function stripeRateLimit(config: Pick<Config, "STRIPE_MAX_RPS" | "STRIPE_SECRET_KEY">): number {
  if (config.STRIPE_MAX_RPS) return config.STRIPE_MAX_RPS;
  return /^(sk|rk)_live_/.test(config.STRIPE_SECRET_KEY ?? "") ? 100 : 25;
}

/** The secrets of patient pseudonym versions 2, 3, ... (empty: version 1 only). */
export function patientKeyChain(config: Pick<Config, "PATIENT_KEY_CHAIN">): string[] {
  return config.PATIENT_KEY_CHAIN ? config.PATIENT_KEY_CHAIN.split(",") : [];
}

/** The version new pseudonyms are written under: 1 + the links of PATIENT_KEY_CHAIN. */
export function currentPatientKeyVersion(config: Pick<Config, "PATIENT_KEY_CHAIN">): number {
  return patientKeyChain(config).length + 1;
}

/**
 * The key of the keyed hashes that must not change when the patient key rotates: Idempotency-Key
 * hashes of patient events and the id of an office onboarded with an Idempotency-Key. It is the
 * root of the pseudonym chain, PATIENT_KEY_SECRET, which rotation never replaces (a new version
 * is appended to PATIENT_KEY_CHAIN instead), so replays keep matching and office ids stay put.
 */
export function requestKeySecret(config: Pick<Config, "PATIENT_KEY_SECRET">): string {
  return config.PATIENT_KEY_SECRET;
}

/** Whether the configuration offers an office this tax mode (docs/payment-plan.md §11.1). */
export function taxModeOffered(config: Pick<Config, "TAX_MODE">, mode: "stripe_tax" | "manual"): boolean {
  const offered = config.TAX_MODE ?? "none";
  return offered === "stripe_tax" || (offered === "manual" && mode === "manual");
}

export class ConfigError extends Error {
  readonly variables: string[];
  constructor(issues: { variable: string; problem: string }[]) {
    super(`invalid configuration: ${issues.map((i) => `${i.variable} ${i.problem}`).join("; ")}`);
    this.name = "ConfigError";
    this.variables = [...new Set(issues.map((i) => i.variable))];
  }
}

const cache = new WeakMap<object, Config>();

/** Bindings checked with the variables: their absence is a configuration error, not a silent gap. */
export const RATE_LIMIT_BINDINGS = ["REFUSED_RATE_LIMITER", "TOKEN_RATE_LIMITER"] as const;

/** Validates the environment once per env object; throws ConfigError naming the variables. */
export function loadConfig(env: Env): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) raw[key] = env[key] === "" ? undefined : env[key];
  const parsed = configSchema.safeParse(raw);
  // The rate limiting bindings ([[ratelimits]] in wrangler.toml): without them nothing limits floods.
  const bindings = RATE_LIMIT_BINDINGS.filter((name) => typeof (env[name] as { limit?: unknown } | undefined)?.limit !== "function").map((variable) => ({
    variable,
    problem: "is missing (a [[ratelimits]] binding of wrangler.toml)",
  }));
  if (!parsed.success || bindings.length > 0) {
    throw new ConfigError([
      ...(parsed.success ? [] : parsed.error.issues).map((issue) => ({
        variable: String(issue.path[0] ?? "environment"),
        // zod messages here describe the expectation; none echoes the received value.
        problem: raw[String(issue.path[0])] === undefined ? "is missing" : `is invalid (${issue.message})`,
      })),
      ...bindings,
    ]);
  }
  cache.set(env, parsed.data);
  return parsed.data;
}
