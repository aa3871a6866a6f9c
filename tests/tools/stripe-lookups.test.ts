// The emulator's look-ups (tools/stripe-emulator/lookups.mjs) through the pinned `stripe` package:
// customers listed by e-mail, customer search (Stripe's query language, the subset emulated,
// `has_more`/`next_page`), invoices listed by customer; and the `drop_response` fault and the
// 24-hour key expiry the late-create look-up of src/stripe/gateway.ts answers.
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";

const API_KEY = "sk_test_emulator_lookups";
let em: Awaited<ReturnType<typeof startStripeEmulator>>;
let stripe: Stripe;

beforeAll(async () => {
  em = await startStripeEmulator({ rpsLimit: 0, paymentDelayMs: 3_600_000 });
  stripe = new Stripe(API_KEY, { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
});
afterAll(async () => {
  await em.close();
});

const raw = (path: string, init: RequestInit = {}) =>
  fetch(`${em.url}${path}`, { ...init, headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/x-www-form-urlencoded", ...(init.headers ?? {}) } });

describe("customer look-ups", () => {
  it("lists customers by e-mail and searches them by metadata, name and e-mail, paging with next_page", async () => {
    const made: Stripe.Customer[] = [];
    for (let i = 0; i < 3; i++) made.push(await stripe.customers.create({ email: "ops@lookup.example", name: `Office ${i}`, metadata: { office_ref: `off_${i}` } }));
    await stripe.customers.create({ email: "other@lookup.example", metadata: { office_ref: "off_x" } });

    const listed = await stripe.customers.list({ email: "ops@lookup.example", limit: 100 });
    expect(listed.data.map((c) => c.id)).toEqual(made.map((c) => c.id).reverse());

    const one = await stripe.customers.search({ query: "metadata['office_ref']:'off_1'" });
    expect(one).toMatchObject({ object: "search_result", has_more: false, next_page: null });
    expect(one.data.map((c) => c.id)).toEqual([made[1]!.id]);
    const both = await stripe.customers.search({ query: `metadata["office_ref"]:"off_0" OR metadata["office_ref"]:"off_2"` });
    expect(both.data.map((c) => c.id).sort()).toEqual([made[0]!.id, made[2]!.id].sort());
    const negated = await stripe.customers.search({ query: `email:"ops@lookup.example" AND -name:"Office 0"` });
    expect(negated.data).toHaveLength(2);
    const substring = await stripe.customers.search({ query: `name~"ffice"` });
    expect(substring.data).toHaveLength(3);

    const first = await stripe.customers.search({ query: `email:"ops@lookup.example"`, limit: 2 });
    expect(first.has_more).toBe(true);
    expect(typeof first.next_page).toBe("string");
    const second = await stripe.customers.search({ query: `email:"ops@lookup.example"`, limit: 2, page: first.next_page! });
    expect(second).toMatchObject({ has_more: false, next_page: null });
    expect([...first.data, ...second.data].map((c) => c.id).sort()).toEqual(made.map((c) => c.id).sort());
  });

  it("refuses queries outside the language, and unknown parameters", async () => {
    for (const query of [`email:"a" AND name:"b" OR phone:"c"`, `foo:"x"`, `name~"ab"`, `email:unquoted`, `metadata:"x"`]) {
      const res = await raw(`/v1/customers/search?query=${encodeURIComponent(query)}`);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { error: { param: string } }).error.param).toBe("query");
    }
    const unknown = await raw(`/v1/customers?mail=x`);
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("parameter_unknown");
    expect((await raw(`/v1/customers/search`)).status).toBe(400);
  });

  it("makes new customers searchable only after the configured delay of its clock (Stripe: under a minute)", async () => {
    const lagging = await startStripeEmulator({ rpsLimit: 0, searchDelayMs: 60_000 });
    try {
      const s = new Stripe(API_KEY, { host: "127.0.0.1", port: lagging.port, protocol: "http", maxNetworkRetries: 0 });
      const c = await s.customers.create({ email: "late@lookup.example", metadata: { office_ref: "off_late" } });
      expect((await s.customers.search({ query: "metadata['office_ref']:'off_late'" })).data).toEqual([]);
      expect((await s.customers.list({ email: "late@lookup.example" })).data.map((x) => x.id)).toEqual([c.id]); // a list is consistent at once
      lagging.advanceClock(60);
      expect((await s.customers.search({ query: "metadata['office_ref']:'off_late'" })).data.map((x) => x.id)).toEqual([c.id]);
    } finally {
      await lagging.close();
    }
  });
});

describe("invoice look-ups", () => {
  it("lists a customer's invoices newest first, with status filter and cursor pages", async () => {
    const customer = await stripe.customers.create({ email: "inv@lookup.example" });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await stripe.invoices.create({ customer: customer.id, auto_advance: false, metadata: { invoice_ref: `inv_${i}` } })).id!);
    const page1 = await stripe.invoices.list({ customer: customer.id, limit: 2 });
    expect(page1.has_more).toBe(true);
    const page2 = await stripe.invoices.list({ customer: customer.id, limit: 2, starting_after: page1.data.at(-1)!.id! });
    expect([...page1.data, ...page2.data].map((i) => i.metadata?.invoice_ref)).toEqual(["inv_2", "inv_1", "inv_0"]);
    expect((await stripe.invoices.list({ customer: customer.id, status: "open" })).data).toEqual([]);
    expect((await raw(`/v1/invoices?status=pending`)).status).toBe(400);
    expect((await raw(`/v1/invoices?subscription=sub_1`)).status).toBe(400);
  });
});

describe("a create whose answer is lost, retried after 24 hours", () => {
  it("drop_response: Stripe makes the object, the client gets no answer; a replay within 24 hours is lost too; past 24 hours the key makes a second object", async () => {
    em.addFaultRule({ match: "lost_create_key", kinds: ["drop_response"], times: 2 });
    const create = () => raw(`/v1/customers`, { method: "POST", body: "email=lost%40lookup.example", headers: { "idempotency-key": "lost_create_key" } });
    await expect(create()).rejects.toThrow(); // executed, answer dropped
    await expect(create()).rejects.toThrow(); // replayed, answer dropped
    const count = async () => (await stripe.customers.list({ email: "lost@lookup.example" })).data.length;
    expect(await count()).toBe(1);
    const replay = await create();
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await count()).toBe(1);
    em.advanceClock(24 * 3600);
    const again = await create();
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    expect(await count()).toBe(2); // why a late retry must look its object up first
  });

  it("ages only the keys asked for (a scoped stand-in for the clock, for tests sharing one emulator)", async () => {
    const make = (key: string) => raw(`/v1/customers`, { method: "POST", body: "email=aged%40lookup.example", headers: { "idempotency-key": key } });
    await make("aged_key_one");
    await make("kept_key_two");
    const res = await fetch(`${em.url}/_emulator/idempotency/age`, { method: "POST", body: JSON.stringify({ match: "aged_key", seconds: 24 * 3600 }) });
    expect(await res.json()).toEqual({ aged: 1 });
    expect((await make("aged_key_one")).headers.get("idempotent-replayed")).toBeNull();
    expect((await make("kept_key_two")).headers.get("idempotent-replayed")).toBe("true");
    expect((await fetch(`${em.url}/_emulator/idempotency/age`, { method: "POST", body: JSON.stringify({ match: "ab", seconds: 1 }) })).status).toBe(400);
  });
});
