/**
 * The domain's errors, neutral of any transport: every layer (office objects, the Stripe gateway,
 * security, billing, the HTTP routes) throws `ApiError` with one of these codes and a detail that
 * carries no personal data. Only src/http/ knows what a code becomes on the wire: problem.ts maps
 * each code to its HTTP status and RFC 9457 problem+json. Nothing here imports from src/http/.
 */
export const errorCodes = {
  BAD_REQUEST: { title: "Bad request" },
  BODY_NOT_ALLOWED: { title: "Request body not allowed" },
  VALIDATION_FAILED: { title: "Validation failed" },
  OFFICE_TEXT_LOOKS_LIKE_PHI: { title: "Office text looks like patient data" },
  WEBHOOK_SIGNATURE_INVALID: { title: "Webhook signature invalid" },
  UNAUTHORIZED: { title: "Unauthorized" },
  FORBIDDEN: { title: "Forbidden" },
  NOT_FOUND: { title: "Not found" },
  METHOD_NOT_ALLOWED: { title: "Method not allowed" },
  CONFLICT: { title: "Conflict" },
  PAYLOAD_TOO_LARGE: { title: "Payload too large" },
  UNSUPPORTED_MEDIA_TYPE: { title: "Unsupported media type" },
  UPGRADE_REQUIRED: { title: "Upgrade required" },
  UNPROCESSABLE: { title: "Unprocessable content" },
  RATE_LIMITED: { title: "Too many requests" },
  INTERNAL: { title: "Internal server error" },
  STRIPE_REFUSED: { title: "Payment provider refused the request" },
  CONFIG_INVALID: { title: "Service misconfigured" },
  SERVICE_UNAVAILABLE: { title: "Service unavailable" },
  BILLING_PORTAL_NOT_CONFIGURED: { title: "Billing portal not configured" },
} as const satisfies Record<string, { title: string }>;

export type ErrorCode = keyof typeof errorCodes;

/** A field-level problem: where (a path into the input, never its value) and what is wrong. */
export type FieldError = { path: string; message: string };

/**
 * The error class every layer throws. `headers` are hints the transport may attach (e.g.
 * `Retry-After`, an auth challenge); src/http/ turns the whole into problem+json.
 */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly errors?: FieldError[];
  readonly headers?: Record<string, string>;
  constructor(code: ErrorCode, detail: string, opts: { errors?: FieldError[]; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(detail, { cause: opts.cause });
    this.name = "ApiError";
    this.code = code;
    this.errors = opts.errors;
    this.headers = opts.headers;
  }
}
