/** Waiting helpers of the tools tests (Node, real time). */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 10 ms until it returns something truthy (answered), or fails after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(10);
  }
}
