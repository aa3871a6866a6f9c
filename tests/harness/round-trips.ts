import { env } from "cloudflare:test";

/**
 * Counts database round trips at this isolate's fetch to the libSQL server (the test and the office
 * objects it runs share the isolate under vitest-pool-workers); the server's own count is shared
 * with the other test files running at the same time. `when` narrows what counts (e.g. only inside
 * an office's exclusive section). `restore()` puts the real fetch back.
 */
export function countDbRoundTrips(when: () => boolean = () => true): { readonly trips: number; restore: () => void } {
  const origin = new URL(env.TURSO_DATABASE_URL!).origin;
  const real = globalThis.fetch;
  let trips = 0;
  globalThis.fetch = ((input: Request | string | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    if (when() && new URL(req.url).origin === origin) trips++;
    return real(req);
  }) as typeof fetch;
  return {
    get trips() {
      return trips;
    },
    restore: () => {
      globalThis.fetch = real;
    },
  };
}

/** Runs `fn` counting its database round trips. */
export async function withDbRoundTrips<T>(fn: () => Promise<T>): Promise<{ trips: number; result: T }> {
  const counter = countDbRoundTrips();
  try {
    const result = await fn();
    return { trips: counter.trips, result };
  } finally {
    counter.restore();
  }
}
