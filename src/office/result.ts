import { loggableError } from "../db/errors";
import { ApiError, type ErrorCode, type FieldError } from "../errors";

/**
 * What an office Durable Object method returns across RPC. Methods never throw across the RPC
 * boundary: error classes do not survive it, and a rejected RPC would surface as an unhandled
 * rejection in the caller's runtime. The typed client turns a failure back into an ApiError.
 */
export type OfficeResult<T> = { ok: true; value: T } | { ok: false; error: { code: ErrorCode; detail: string; errors?: FieldError[] } };

export const ok = <T>(value: T): OfficeResult<T> => ({ ok: true, value });

/** Converts an exception inside the object into a failure result (ApiError keeps its code). */
export function failure(err: unknown): OfficeResult<never> {
  if (err instanceof ApiError) return { ok: false, error: { code: err.code, detail: err.message, ...(err.errors ? { errors: err.errors } : {}) } };
  console.error(JSON.stringify({ level: "error", msg: "office object operation failed", error: loggableError(err) }));
  return { ok: false, error: { code: "INTERNAL", detail: "The office operation failed unexpectedly." } };
}

export function unwrap<T>(result: OfficeResult<T>): T {
  if (result.ok) return result.value;
  throw new ApiError(result.error.code, result.error.detail, result.error.errors ? { errors: result.error.errors } : {});
}
