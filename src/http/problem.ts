import { z } from "@hono/zod-openapi";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { errorCodes, type ErrorCode } from "../errors";

export { ApiError, errorCodes, type ErrorCode } from "../errors";

/** What each domain error code is on the wire (src/errors.ts holds the codes, this layer their statuses). */
export const problemStatus = {
  BAD_REQUEST: 400,
  BODY_NOT_ALLOWED: 400,
  VALIDATION_FAILED: 400,
  OFFICE_TEXT_LOOKS_LIKE_PHI: 400,
  WEBHOOK_SIGNATURE_INVALID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UPGRADE_REQUIRED: 426,
  UNPROCESSABLE: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  STRIPE_REFUSED: 502,
  CONFIG_INVALID: 500,
  SERVICE_UNAVAILABLE: 503,
  BILLING_PORTAL_NOT_CONFIGURED: 503,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;

/**
 * The one error model of the API: RFC 9457 problem details, `application/problem+json`, with the
 * machine-readable `code` and the `requestId` of the request that failed.
 */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";
export const PROBLEM_TYPE_BASE = "https://docs.office-billing.dev/problems/";

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

export function problemBody(code: ErrorCode, detail: string, requestId: string, errors?: Problem["errors"]): Problem {
  const { title } = errorCodes[code];
  const status = problemStatus[code];
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
        description: (Object.keys(problemStatus) as ErrorCode[]).map((code) => (problemStatus[code] === s ? errorCodes[code].title : null)).find((t) => t !== null) ?? "Error",
        content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
      },
    ]),
  ) as Record<S, { description: string; content: { [PROBLEM_CONTENT_TYPE]: { schema: typeof ProblemSchema } } }>;
}
