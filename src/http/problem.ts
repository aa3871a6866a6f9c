import { z } from "@hono/zod-openapi";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * The one error model of the API: RFC 9457 problem details, `application/problem+json`, with the
 * machine-readable `code` and the `requestId` of the request that failed.
 */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";
export const PROBLEM_TYPE_BASE = "https://docs.office-billing.dev/problems/";

export const errorCodes = {
  BAD_REQUEST: { status: 400, title: "Bad request" },
  BODY_NOT_ALLOWED: { status: 400, title: "Request body not allowed" },
  VALIDATION_FAILED: { status: 400, title: "Validation failed" },
  WEBHOOK_SIGNATURE_INVALID: { status: 400, title: "Webhook signature invalid" },
  UNAUTHORIZED: { status: 401, title: "Unauthorized" },
  FORBIDDEN: { status: 403, title: "Forbidden" },
  NOT_FOUND: { status: 404, title: "Not found" },
  METHOD_NOT_ALLOWED: { status: 405, title: "Method not allowed" },
  CONFLICT: { status: 409, title: "Conflict" },
  PAYLOAD_TOO_LARGE: { status: 413, title: "Payload too large" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: "Unsupported media type" },
  UPGRADE_REQUIRED: { status: 426, title: "Upgrade required" },
  UNPROCESSABLE: { status: 422, title: "Unprocessable content" },
  RATE_LIMITED: { status: 429, title: "Too many requests" },
  INTERNAL: { status: 500, title: "Internal server error" },
  STRIPE_REFUSED: { status: 502, title: "Payment provider refused the request" },
  CONFIG_INVALID: { status: 500, title: "Service misconfigured" },
  SERVICE_UNAVAILABLE: { status: 503, title: "Service unavailable" },
} as const satisfies Record<string, { status: ContentfulStatusCode; title: string }>;

export type ErrorCode = keyof typeof errorCodes;

export const ProblemSchema = z
  .object({
    type: z.string().url().openapi({ example: `${PROBLEM_TYPE_BASE}not_found` }),
    title: z.string().openapi({ example: "Not found" }),
    status: z.number().int().openapi({ example: 404 }),
    detail: z.string().openapi({ example: "No route matches GET /v1/nothing." }),
    code: z.enum(Object.keys(errorCodes) as [ErrorCode, ...ErrorCode[]]).openapi({ example: "NOT_FOUND" }),
    requestId: z.string().openapi({ example: "req_01JD4Y6ZQ4W9X8V7T6S5R4Q3P2" }),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .openapi({ description: "Field-level problems, for VALIDATION_FAILED." }),
  })
  .openapi("Problem");

export type Problem = z.infer<typeof ProblemSchema>;

/** The error class every layer throws; `app.onError` turns it into problem+json. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  readonly errors?: { path: string; message: string }[];
  readonly headers?: Record<string, string>;
  constructor(
    code: ErrorCode,
    detail: string,
    opts: { errors?: { path: string; message: string }[]; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(detail, { cause: opts.cause });
    this.name = "ApiError";
    this.code = code;
    this.status = errorCodes[code].status;
    this.errors = opts.errors;
    this.headers = opts.headers;
  }
}

export function problemBody(code: ErrorCode, detail: string, requestId: string, errors?: Problem["errors"]): Problem {
  const { status, title } = errorCodes[code];
  return {
    type: PROBLEM_TYPE_BASE + code.toLowerCase(),
    title,
    status,
    detail,
    code,
    requestId,
    ...(errors && errors.length > 0 ? { errors } : {}),
  };
}

export function problemResponse(
  code: ErrorCode,
  detail: string,
  requestId: string,
  opts: { errors?: Problem["errors"]; headers?: Record<string, string> } = {},
): Response {
  const body = problemBody(code, detail, requestId, opts.errors);
  return new Response(JSON.stringify(body), {
    status: body.status,
    headers: { "content-type": PROBLEM_CONTENT_TYPE, "x-request-id": requestId, ...opts.headers },
  });
}

/** OpenAPI description of a problem response, for routes to list the errors they return. */
export function problemResponses<S extends ContentfulStatusCode>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: Object.values(errorCodes).find((e) => e.status === s)?.title ?? "Error",
        content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
      },
    ]),
  ) as Record<S, { description: string; content: { [PROBLEM_CONTENT_TYPE]: { schema: typeof ProblemSchema } } }>;
}
