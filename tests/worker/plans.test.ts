import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";

const base = "https://billing.test/v1/plans";
const tiers = [
  { upTo: 50, unitAmount: 800 },
  { upTo: 200, unitAmount: 600 },
  { upTo: null, unitAmount: 400 },
];
const version = { currency: "usd", baseFee: 4900, tiers, includedPatients: 10, setupFee: 25000, trialDays: 14 };

async function call(path: string, init: RequestInit = {}) {
  const token = await mintToken("platform_admin");
  return SELF.fetch(`${base}${path}`, { ...init, headers: { ...bearer(token), "content-type": "application/json", ...(init.headers as object) } });
}
const post = (path: string, body?: unknown) => call(path, { method: "POST", ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
const code = () => `std-${crypto.randomUUID().slice(0, 8)}`;

type Plan = { id: string; code: string; status: string; versions: { id: string; version: number; baseFee: number; graceDays: number; tiers: unknown }[] };

describe("plans (platform_admin)", () => {
  it("creates a plan with its first version, defaults applied", async () => {
    const res = await post("", { code: code(), name: "Standard", version });
    expect(res.status).toBe(201);
    const plan = (await res.json()) as Plan;
    expect(plan).toMatchObject({ status: "active", versions: [{ version: 1, baseFee: 4900, graceDays: 14, tiers }] });
    expect(plan.id).toMatch(/^plan_[0-9a-f]{32}$/);
    const got = (await (await call(`/${plan.id}`)).json()) as Plan;
    expect(got).toEqual(plan);
  });

  it("adds versions with the next number, newest first, leaving older ones unchanged", async () => {
    const plan = (await (await post("", { code: code(), name: "Standard", version })).json()) as Plan;
    const v2 = (await (await post(`/${plan.id}/versions`, { ...version, baseFee: 5900 })).json()) as Plan;
    const v3 = (await (await post(`/${plan.id}/versions`, { ...version, baseFee: 6900 })).json()) as Plan;
    expect(v2.versions.map((v) => v.version)).toEqual([2, 1]);
    expect(v3.versions.map((v) => [v.version, v.baseFee])).toEqual([
      [3, 6900],
      [2, 5900],
      [1, 4900],
    ]);
  });

  it("numbers concurrent versions without a gap or a clash", async () => {
    const plan = (await (await post("", { code: code(), name: "Standard", version })).json()) as Plan;
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => post(`/${plan.id}/versions`, { ...version, baseFee: 100 * i })));
    expect(results.every((r) => r.status === 201)).toBe(true);
    const final = (await (await call(`/${plan.id}`)).json()) as Plan;
    expect(final.versions.map((v) => v.version)).toEqual([6, 5, 4, 3, 2, 1]);
  });

  it("retires a plan: listed as retired, no new versions", async () => {
    const plan = (await (await post("", { code: code(), name: "Legacy", version })).json()) as Plan;
    const retired = await post(`/${plan.id}/retire`);
    expect(((await retired.json()) as Plan).status).toBe("retired");
    expect((await post(`/${plan.id}/retire`)).status).toBe(200);
    await expectProblem(await post(`/${plan.id}/versions`, version), 409, "CONFLICT");
    const list = (await (await call("?status=retired")).json()) as { data: Plan[] };
    expect(list.data.map((p) => p.id)).toContain(plan.id);
    const active = (await (await call("?status=active")).json()) as { data: Plan[] };
    expect(active.data.map((p) => p.id)).not.toContain(plan.id);
  });

  it("refuses a duplicate code, malformed tiers and money that is not an integer", async () => {
    const c = code();
    await post("", { code: c, name: "A", version });
    await expectProblem(await post("", { code: c, name: "B", version }), 409, "CONFLICT");
    for (const bad of [
      { ...version, tiers: [{ upTo: 10, unitAmount: 100 }] },
      { ...version, tiers: [{ upTo: 10, unitAmount: 100 }, { upTo: 5, unitAmount: 50 }, { upTo: null, unitAmount: 10 }] },
      { ...version, baseFee: 49.5 },
      { ...version, baseFee: -1 },
      { ...version, currency: "USD" },
      { ...version, discount: 10 },
    ]) {
      await expectProblem(await post("", { code: code(), name: "X", version: bad }), 400, "VALIDATION_FAILED");
    }
  });

  it("answers 404 for an unknown plan and 400 for a malformed id", async () => {
    await expectProblem(await call("/plan_00000000000000000000000000000000"), 404, "NOT_FOUND");
    await expectProblem(await post("/plan_00000000000000000000000000000000/versions", version), 404, "NOT_FOUND");
    await expectProblem(await call("/not-a-plan"), 400, "VALIDATION_FAILED");
  });
});
