/** The messages of an error and its causes (drizzle wraps the driver's error as `cause`). */
export function errorChain(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (e instanceof Error) {
      parts.push(`${e.message}${(e as { code?: string }).code ? ` [${(e as { code?: string }).code}]` : ""}`);
      e = e.cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join(" <- ");
}

/** Resolves to the error chain of a promise that must reject. */
export async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return errorChain(err);
  }
  throw new Error("expected the database to refuse the statement, but it succeeded");
}
