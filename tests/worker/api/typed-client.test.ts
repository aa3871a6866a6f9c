import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
// @ts-expect-error -- plain ESM JavaScript tool (typed by tsconfig.clients.json, not this project)
import { ApiProblem, must, typedClient } from "../../../tools/lib/api.mjs";
import { mintToken } from "../../harness/auth";
import { seedOffice, testDb } from "../../harness/seed";

/**
 * The operator CLI's typed client (tools/lib/api.mjs: openapi-fetch over client/schema.d.ts) against
 * the real Worker: the calls `npm run billing` makes, built by the client from the generated paths
 * (path parameters, queries, JSON bodies), answered as the types say, and refusals raised as
 * ApiProblem with the API's problem+json. tsconfig.clients.json checks the same calls' types.
 */
const base = "https://billing.test";
const client = async () => typedClient(base, await mintToken("platform_admin"), { fetch: (request: Request) => SELF.fetch(request) });

describe("the typed API client (openapi-fetch over the generated types)", () => {
  it("makes the operator CLI's calls: an office, its usage and invoices, the office list, a dry invoicing run", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const office = await seedOffice(testDb(), { legalName: `Typed Client ${tag} Clinic` });
    const api = await client();

    const got = await must(api.GET("/v1/offices/{officeId}", { params: { path: { officeId: office.id } } }));
    expect(got).toMatchObject({ id: office.id, legalName: `Typed Client ${tag} Clinic`, status: "active", currentCycle: { start: "2026-11-01", end: "2026-12-01" } });

    const usage = await must(api.GET("/v1/offices/{officeId}/usage", { params: { path: { officeId: office.id } } }));
    expect(usage.billablePatients).toBe(0);

    const invoices = await must(api.GET("/v1/offices/{officeId}/invoices", { params: { path: { officeId: office.id }, query: { limit: 5 } } }));
    expect(Array.isArray(invoices.data)).toBe(true);

    // The query goes through the client's serializer; an undefined value is left out (the API
    // refuses unknown or empty parameters).
    const page = await must(api.GET("/v1/offices", { params: { query: { legalNamePrefix: `Typed Client ${tag}`, sort: "legalName", limit: 50, cursor: undefined } } }));
    expect(page.data.map((o: { id: string }) => o.id)).toEqual([office.id]);
    expect(page.nextCursor).toBeNull();

    // The run's JSON body; a dry run changes nothing.
    const plan = await must(api.POST("/v1/admin/invoicing-runs", { body: { date: "2026-12-02", dryRun: true, officeIds: [office.id] } }));
    expect(plan).toMatchObject({ dryRun: true, offices: [{ officeId: office.id, invoices: expect.any(Array) }] });
    expect(Date.parse(plan.at)).not.toBeNaN();
    expect((await must(api.GET("/v1/offices/{officeId}", { params: { path: { officeId: office.id } } }))).currentCycle).toEqual(got.currentCycle);
  });

  it("raises a refusal as an ApiProblem with the API's code and request id", async () => {
    const api = await client();
    const missing = await must(api.GET("/v1/offices/{officeId}", { params: { path: { officeId: `off_${"0".repeat(32)}` } } })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiProblem);
    expect(missing).toMatchObject({ status: 404, problem: { code: "NOT_FOUND", requestId: expect.stringMatching(/^req_/) } });

    // What tsc refuses in the clients (a date that is not a date) the API refuses too: 400.
    const bad = await must(api.POST("/v1/admin/invoicing-runs", { body: { date: "tomorrow", dryRun: true } })).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ApiProblem);
    expect((bad as { status: number }).status).toBe(400);
    expect((bad as Error).message).toMatch(/^400 /);

    const refused = await must(typedClient(base, "not-a-token", { fetch: (request: Request) => SELF.fetch(request) }).GET("/v1/offices")).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 401, problem: { code: "UNAUTHORIZED" } });
  });
});
