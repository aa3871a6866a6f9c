// The emulator's per-request latency (`latencyMs`, `--latency-ms`, POST /_emulator/latency): every
// API request is handled that much later, as Stripe's own processing and the network take time.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";
import { until } from "./wait";

const API_KEY = "sk_test_emulator_latency";
const cliPath = fileURLToPath(new URL("../../tools/stripe-emulator/cli.mjs", import.meta.url));

type Emulator = Awaited<ReturnType<typeof startStripeEmulator>>;

const createCustomer = (url: string, name: string) =>
  fetch(`${url}/v1/customers`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/x-www-form-urlencoded" }, body: `name=${name}` });

/** Wall time of one request (ms). */
async function timed(f: () => Promise<Response>) {
  const t = performance.now();
  const res = await f();
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t };
}

describe("per-request latency", () => {
  let em: Emulator;
  beforeAll(async () => {
    em = await startStripeEmulator({ latencyMs: 200, rpsLimit: 0 });
  });
  afterAll(async () => {
    await em?.close();
  });

  it("delays every API request by latencyMs, concurrently (not one after another), and not the control API", async () => {
    const one = await timed(() => createCustomer(em.url, "slow"));
    expect(one.status).toBe(200);
    expect(one.ms).toBeGreaterThanOrEqual(195);
    // Ten at once take about one latency, not ten: the delay is per request, not a queue.
    const t = performance.now();
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => timed(() => createCustomer(em.url, `c${i}`))));
    const wall = performance.now() - t;
    expect(all.every((r) => r.status === 200 && r.ms >= 195)).toBe(true);
    expect(wall).toBeLessThan(1500);
    const control = await timed(() => fetch(`${em.url}/_emulator/config`));
    expect(control.ms).toBeLessThan(150);
    expect(((await (await fetch(`${em.url}/_emulator/config`)).json()) as { latencyMs: number }).latencyMs).toBe(200);
  });

  it("is set and cleared through the control API; a bad value is refused (400) and changes nothing", async () => {
    const bad = await fetch(`${em.url}/_emulator/latency`, { method: "POST", body: JSON.stringify({ ms: -5 }) });
    expect(bad.status).toBe(400);
    const set = await fetch(`${em.url}/_emulator/latency`, { method: "POST", body: JSON.stringify({ ms: 0 }) });
    expect(await set.json()).toEqual({ ms: 0 });
    const fast = await timed(() => createCustomer(em.url, "fast"));
    expect(fast.status).toBe(200);
    expect(fast.ms).toBeLessThan(150);
    em.setLatency(200);
    expect((await timed(() => createCustomer(em.url, "slow-again"))).ms).toBeGreaterThanOrEqual(195);
    expect(() => em.setLatency("x")).toThrow(/latency/);
  });

  it("refuses a bad latencyMs at start", async () => {
    await expect(startStripeEmulator({ latencyMs: -1 })).rejects.toThrow(/latencyMs/);
  });
});

describe("cli --latency-ms", () => {
  it("starts with the latency set; a bad value exits 2 with the usage", async () => {
    const child = spawn(process.execPath, [cliPath, "--port", "0", "--latency-ms", "150"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      await until(() => out.includes("\n"), 5000);
      const url = out.trim().replace("listening on ", "");
      expect(((await (await fetch(`${url}/_emulator/config`)).json()) as { latencyMs: number }).latencyMs).toBe(150);
      const r = await timed(() => createCustomer(url, "cli"));
      expect(r.status).toBe(200);
      expect(r.ms).toBeGreaterThanOrEqual(145);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);

    const bad = spawn(process.execPath, [cliPath, "--port", "0", "--latency-ms", "1.5"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    bad.stderr.on("data", (d) => (err += d));
    const code = await new Promise<number | null>((r) => bad.on("exit", (c) => r(c)));
    expect(code).toBe(2);
    expect(err).toContain("--latency-ms must be an integer >= 0");
  });
});
