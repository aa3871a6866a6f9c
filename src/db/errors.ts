/** True when an error, or one of its causes (drizzle wraps the driver's), has a matching message. */
export function dbErrorMatches(err: unknown, pattern: RegExp): boolean {
  for (let e: unknown = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    if (pattern.test(e.message)) return true;
  }
  return false;
}
