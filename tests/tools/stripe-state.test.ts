// `npm run dev`'s check that the local Stripe emulator still has the Stripe objects the database
// names (tools/lib/stripe-state.mjs): a real local libSQL server with the migrations applied, rows
// whose Stripe ids are sealed by the Worker's own code (src/security), and a real emulator.
import { randomBytes } from "node:crypto";
import { createClient, type Client } from "@libsql/client";
import Stripe from "stripe";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startServer } from "../../tools/libsql-server/server.mjs";
import { applyMigrations } from "../../tools/lib/migrate.mjs";
import { checkStripeState, STRIPE_REFERENCE_COLUMNS, stripeStateMessage } from "../../tools/lib/stripe-state.mjs";
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";
import { encryptedColumns, indexedColumns, sealReference } from "../../src/security/data-keys";
import { loadKeyring } from "../../src/security/crypto";

const KEY = `k1:${randomBytes(32).toString("base64url")}`;
const INDEX_KEY = randomBytes(32).toString("base64url");

let db: Awaited<ReturnType<typeof startServer>>;
let em: Awaited<ReturnType<typeof startStripeEmulator>>;
let client: Client;
let stripe: Stripe;
let dbUrl: string;
let n = 0;

beforeAll(async () => {
  db = await startServer({ port: 0, memory: true });
  em = await startStripeEmulator({ port: 0 });
  stripe = new Stripe("sk_test_stripe_state", { host: "127.0.0.1", port: em.port, protocol: "http", maxNetworkRetries: 0 });
});
afterAll(async () => {
  client?.close();
  await em?.close();
  await db?.close();
});
beforeEach(async () => {
  // A database of its own per test.
  client?.close();
  dbUrl = `${db.url}/db/stripe-state-${++n}/`;
  await applyMigrations({ url: dbUrl });
  client = createClient({ url: dbUrl });
  await client.execute("INSERT INTO plans (id, code, name) VALUES ('pl_1', 'basic', 'Basic')");
  await client.execute(`INSERT INTO plan_versions (id, plan_id, version, currency, tiers) VALUES ('pv_1', 'pl_1', 1, 'usd', '[]')`);
  em.reset();
});

const check = (encryptionKey = KEY) => checkStripeState({ dbUrl, encryptionKey, emulatorUrl: em.url });

/** An office, its paid invoice and a refund, in Stripe and in the database (ids sealed as the Worker seals them). */
async function officeWithRefund(officeId: string) {
  const customer = await stripe.customers.create({ name: officeId });
  // Stripe charges only a customer with a default payment method (a test card).
  const pm = await stripe.paymentMethods.attach("pm_card_visa", { customer: customer.id });
  await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: pm.id } });
  const draft = await stripe.invoices.create({ customer: customer.id });
  await stripe.invoices.addLines(draft.id, { lines: [{ amount: 1200 }] });
  const inv = await stripe.invoices.pay(draft.id);
  const [payment] = (await stripe.invoicePayments.list({ invoice: inv.id })).data;
  const refund = await stripe.refunds.create({ payment_intent: payment!.payment.payment_intent as string, amount: 200 });

  const ring = await loadKeyring(KEY, INDEX_KEY);
  const [offices, invoices, refunds] = encryptedColumns;
  const c = await sealReference(ring, offices, officeId, customer.id);
  const i = await sealReference(ring, invoices, `inv_${officeId}`, inv.id);
  const r = await sealReference(ring, refunds, `ref_${officeId}`, refund.id);
  const t = Date.now();
  await client.execute({
    sql: `INSERT INTO offices (id, legal_name, billing_email, time_zone, billing_anchor_day, plan_version_id, status, cycle_start, cycle_end, stripe_customer_ref, stripe_customer_index, updated_at)
          VALUES (?, 'Office', 'o@example.com', 'UTC', 1, 'pv_1', 'active', '2026-01-01', '2026-02-01', ?, ?, ?)`,
    args: [officeId, c.ref, c.index, t],
  });
  await client.execute({
    sql: `INSERT INTO invoices (id, office_id, kind, status, currency, period_start, period_end, total, amount_paid, amount_refunded, stripe_invoice_ref, stripe_invoice_index, stripe_state, updated_at)
          VALUES (?, ?, 'monthly', 'paid', 'usd', '2026-01-01', '2026-02-01', 1200, 1200, 200, ?, ?, 'finalized', ?)`,
    args: [`inv_${officeId}`, officeId, i.ref, i.index, t],
  });
  await client.execute({
    sql: `INSERT INTO refunds (id, office_id, invoice_id, amount, reason, status, stripe_refund_ref, stripe_refund_index, requested_by, updated_at)
          VALUES (?, ?, ?, 200, 'billing_error', 'succeeded', ?, ?, 'admin', ?)`,
    args: [`ref_${officeId}`, officeId, `inv_${officeId}`, r.ref, r.index, t],
  });
  return { customer, invoice: inv, refund };
}

describe("checkStripeState", () => {
  it("reads the same Stripe id columns the Worker encrypts (the indexed ones; document links are not ids)", () => {
    expect(STRIPE_REFERENCE_COLUMNS.map(({ table, id, column }) => ({ table, id, column }))).toEqual(
      indexedColumns.map(({ table, id, column }) => ({ table, id, column })),
    );
  });

  it("an empty database: nothing to say", async () => {
    expect(await check()).toEqual({ referenced: 0, missing: 0, unreadable: 0, message: null });
  });

  it("the emulator has every object the database names: nothing to say", async () => {
    await officeWithRefund("off_a");
    await officeWithRefund("off_b");
    expect(await check()).toMatchObject({ referenced: 6, missing: 0, unreadable: 0, message: null });
  });

  it("the emulator lost its state: one line with the count and the command that fixes it", async () => {
    await officeWithRefund("off_a");
    await officeWithRefund("off_b");
    em.reset(); // as if <data>/stripe had been removed by hand
    const result = await check();
    expect(result).toMatchObject({ referenced: 6, missing: 6 });
    expect(result.message).toBe(
      "dev: the database names 6 Stripe object(s) the local Stripe emulator does not have (its state under .data/stripe was removed?); `npm run dev -- --fresh` starts both over",
    );
    expect(result.message).not.toContain("\n");
    // Some of them only.
    await officeWithRefund("off_c");
    expect((await check()).missing).toBe(6);
  });

  it("the data folder and the command follow the caller", async () => {
    await officeWithRefund("off_a");
    em.reset();
    const { message } = await checkStripeState({ dbUrl, encryptionKey: KEY, emulatorUrl: em.url, stateDir: "/tmp/x/stripe", freshCommand: "npm run dev -- --fresh --data /tmp/x" });
    expect(message).toBe(stripeStateMessage(3, "/tmp/x/stripe", "npm run dev -- --fresh --data /tmp/x"));
    expect(message).toContain("(its state under /tmp/x/stripe was removed?); `npm run dev -- --fresh --data /tmp/x` starts both over");
  });

  it("ids no key opens are not compared, unless the emulator holds nothing at all", async () => {
    await officeWithRefund("off_a");
    const other = `k9:${randomBytes(32).toString("base64url")}`;
    expect(await check(other)).toMatchObject({ referenced: 3, unreadable: 3, missing: 0, message: null });
    expect(await check("")).toMatchObject({ referenced: 3, unreadable: 3, missing: 0, message: null });
    em.reset();
    expect(await check(other)).toMatchObject({ referenced: 3, unreadable: 3, missing: 3 });
  });
});
