import type { OfficeBilling } from "./office/office-billing";
import type { CloseMessage } from "./jobs/invoicing-run";
import type { ClinicalMessage } from "./clinical/delivery";
import type { PlatformAudit } from "./office/platform-audit";
import type { StripeRateLimiter } from "./stripe/rate-limiter";

/**
 * Bindings and variables as the runtime hands them to the Worker. Values are untrusted until
 * `loadConfig` has validated them (src/config.ts).
 */
export interface Env {
  OFFICE_BILLING: DurableObjectNamespace<OfficeBilling>;
  PLATFORM_AUDIT: DurableObjectNamespace<PlatformAudit>;
  INVOICING_QUEUE: Queue<CloseMessage>;
  /** Delivery of events to the clinical application (docs/clinical-events.md). */
  CLINICAL_EVENTS_QUEUE: Queue<ClinicalMessage>;
  STRIPE_RATE_LIMITER: DurableObjectNamespace<StripeRateLimiter>;
  /** Workers Rate Limiting: refused and unauthenticated requests per client address. */
  REFUSED_RATE_LIMITER: RateLimit;
  /** Workers Rate Limiting: authenticated requests per token. */
  TOKEN_RATE_LIMITER: RateLimit;
  /** Static assets (Swagger UI's files for /docs). */
  ASSETS?: Fetcher;
  ENVIRONMENT?: string;
  TURSO_DATABASE_URL?: string;
  TURSO_AUTH_TOKEN?: string;
  AUTH_DEV_SECRET?: string;
  AUTH_ISSUER?: string;
  AUTH_AUDIENCE?: string;
  STRIPE_SECRET_KEY?: string;
  STRIPE_API_BASE?: string;
  [key: string]: unknown;
}
