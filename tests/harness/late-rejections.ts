import { afterEach } from "vitest";

/**
 * workerd reports a promise rejection as unhandled the moment it happens, even when a handler is
 * attached a few microtasks later (Node waits until the microtask queue drains). @libsql/client's
 * `batch()` rejects each failed statement's promise before it awaits them, so a batch refused by
 * the database (a unique constraint, say) would be reported as an unhandled error although our
 * code handles it. This setup file (run in workerd before each test file) takes over vitest's
 * listener: a rejection counts as unhandled only if no handler arrives by the end of the test,
 * and then the test fails with it. (Upstream: vitest-dev/vitest#10960, "retract unhandled
 * rejections with a late handler".)
 */
const pending = new Map<Promise<unknown>, unknown>();

process.on("unhandledRejection", (reason: unknown, promise: Promise<unknown>) => {
  pending.set(promise, reason);
});
process.on("rejectionHandled", (promise: Promise<unknown>) => {
  pending.delete(promise);
});

afterEach(async () => {
  await new Promise((resolve) => setTimeout(resolve, 0));
  const unhandled = [...pending.values()];
  pending.clear();
  if (unhandled.length > 0) {
    const first = unhandled[0];
    throw new Error(`unhandled promise rejection: ${first instanceof Error ? `${first.name}: ${first.message}` : String(first)}`, { cause: first });
  }
});
