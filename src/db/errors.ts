/** True when an error, or one of its causes (drizzle wraps the driver's), has a matching message. */
export function dbErrorMatches(err: unknown, pattern: RegExp): boolean {
  for (let e: unknown = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    if (pattern.test(e.message)) return true;
  }
  return false;
}

/** True when the database answered that a constraint refused a statement: the batch it was in (one transaction) was rolled back whole. */
export const isConstraintViolation = (err: unknown) => dbErrorMatches(err, /\b(?:UNIQUE|CHECK|FOREIGN KEY|NOT NULL) constraint failed\b/);

/**
 * An error as it may be logged: the innermost cause's name and message. drizzle's own error
 * message carries the query's parameters, so it is never logged.
 */
export function loggableError(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error && e.cause instanceof Error; i++) e = e.cause;
  if (!(e instanceof Error)) return "unknown error";
  if (e.name === "DrizzleQueryError" || /params:/.test(e.message)) return e.name;
  return `${e.name}: ${e.message}`.slice(0, 300);
}
