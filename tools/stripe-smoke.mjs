#!/usr/bin/env node
// npm run stripe:smoke
// One test office end to end against STRIPE_API_BASE with STRIPE_SECRET_KEY (a test-mode key, or
// the local emulator): customer, a setup link (Checkout in setup mode), a test card as its default payment method, an invoice made the way
// the Worker makes one (draft, add_lines, finalize), payment, a partial refund, another invoice
// voided, a portal session. Prints each step; exits 1 at the first failure. Every name and
// description it sends is a fixed test value (nothing about any person).
import { parseCli, usageError } from "./lib/cli.mjs";
import { pinnedApiVersion, stripeClient, stripeEnv } from "./lib/stripe-tool.mjs";

const USAGE = `usage: npm run stripe:smoke
One test office end to end on the Stripe account of STRIPE_SECRET_KEY (env; use a test-mode key,
sk_test_… / rk_test_…) at STRIPE_API_BASE (env; default https://api.stripe.com): customer, setup link
(Checkout in setup mode), test card
(pm_card_visa) as default payment method, invoice (draft, add_lines, finalize), payment, partial
refund, void of another invoice, billing-portal session. Prints each step; exit 1 at the first failure.
  -h, --help   this text`;

parseCli("stripe:smoke", USAGE, {});
const { key, base } = stripeEnv();
if (!key) usageError("stripe:smoke", USAGE, "STRIPE_SECRET_KEY is not set");
if (/^(sk|rk)_live_/.test(key)) usageError("stripe:smoke", USAGE, "STRIPE_SECRET_KEY is a live key: the smoke test charges a test card, use a test-mode key");

const stripe = stripeClient(key, base);
const say = (s) => console.log(`stripe:smoke: ${s}`);
const run = `smoke_${Date.now().toString(36)}`;
const metadata = { smoke_run: run };

let n = 0;
async function step(name, fn) {
  n++;
  try {
    const detail = await fn();
    say(`${n}. ${name}: ok${detail ? ` (${detail})` : ""}`);
  } catch (e) {
    say(`${n}. ${name}: FAILED (${e?.statusCode ?? ""} ${e?.type ?? ""}: ${e?.message ?? e})`);
    process.exit(1);
  }
}
function expectEq(what, actual, expected) {
  if (actual !== expected) throw new Error(`${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}

/** An invoice in three calls, as src/stripe/gateway.ts makes one: a tier line (quantity × price_data) and a fixed line. */
async function invoiceOf(customerId, tag) {
  const draft = await stripe.invoices.create(
    { customer: customerId, currency: "usd", collection_method: "charge_automatically", auto_advance: false, description: "Smoke test invoice", metadata },
    { idempotencyKey: `${run}_${tag}_create` },
  );
  await stripe.invoices.addLines(
    draft.id,
    {
      lines: [
        { description: "Active patients", quantity: 3, price_data: { currency: "usd", product_data: { name: "Active patients" }, unit_amount: 1_500 } },
        { description: "Setup fee", amount: 5_000 },
      ],
    },
    { idempotencyKey: `${run}_${tag}_lines` },
  );
  const open = await stripe.invoices.finalizeInvoice(draft.id, { auto_advance: false }, { idempotencyKey: `${run}_${tag}_finalize` });
  expectEq(`invoice ${open.id} status`, open.status, "open");
  expectEq(`invoice ${open.id} total`, open.total, 3 * 1_500 + 5_000);
  return open;
}

say(`${base} (api_version ${pinnedApiVersion()}, run ${run})`);
let customer, paymentMethod, paid, charge, toVoid;
await step("customer", async () => {
  customer = await stripe.customers.create({ name: "Smoke Test Office", email: "smoke-test@example.com", description: "stripe:smoke test office", metadata }, { idempotencyKey: `${run}_customer` });
  return customer.id;
});
await step("setup link (Checkout in setup mode)", async () => {
  // What the Worker's POST /v1/offices/{id}/payment-method/setup-session makes (a person completes it on Stripe's page).
  const session = await stripe.checkout.sessions.create(
    { mode: "setup", customer: customer.id, currency: "usd", success_url: "https://example.com/stripe-smoke-return", cancel_url: "https://example.com/stripe-smoke-return", metadata },
    { idempotencyKey: `${run}_setup` },
  );
  expectEq("mode", session.mode, "setup");
  if (!session.url || typeof session.setup_intent !== "string") throw new Error("setup session without a URL or SetupIntent");
  const si = await stripe.setupIntents.retrieve(session.setup_intent);
  expectEq("setup intent status", si.status, "requires_payment_method");
  return session.id;
});
await step("test card attached", async () => {
  paymentMethod = await stripe.paymentMethods.attach("pm_card_visa", { customer: customer.id });
  expectEq("payment method customer", paymentMethod.customer, customer.id);
  return `${paymentMethod.id}, ${paymentMethod.card?.brand} ${paymentMethod.card?.last4}`;
});
await step("default payment method", async () => {
  const updated = await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: paymentMethod.id } });
  expectEq("invoice_settings.default_payment_method", updated.invoice_settings.default_payment_method, paymentMethod.id);
});
await step("invoice (draft, add_lines, finalize)", async () => {
  paid = await invoiceOf(customer.id, "a");
  return `${paid.id}, ${paid.total} ${paid.currency}`;
});
await step("payment", async () => {
  paid = await stripe.invoices.pay(paid.id, {}, { idempotencyKey: `${run}_a_pay` });
  expectEq("status", paid.status, "paid");
  expectEq("amount_paid", paid.amount_paid, paid.total);
  const payments = await stripe.invoicePayments.list({ invoice: paid.id, limit: 10 });
  const pi = payments.data.find((p) => p.status === "paid")?.payment.payment_intent;
  const piId = typeof pi === "string" ? pi : pi?.id;
  if (!piId) throw new Error("no paid invoice payment with a payment intent");
  const charges = await stripe.charges.list({ payment_intent: piId, limit: 10 });
  charge = charges.data.find((c) => c.status === "succeeded");
  if (!charge) throw new Error(`no succeeded charge for ${piId}`);
  return `${paid.amount_paid} ${paid.currency}, charge ${charge.id}`;
});
await step("partial refund", async () => {
  const refund = await stripe.refunds.create({ charge: charge.id, amount: 1_000, metadata }, { idempotencyKey: `${run}_refund` });
  expectEq("refund amount", refund.amount, 1_000);
  const after = await stripe.charges.retrieve(charge.id);
  expectEq("charge amount_refunded", after.amount_refunded, 1_000);
  expectEq("charge refunded", after.refunded, false);
  return `${refund.id}, ${refund.status}`;
});
await step("void of another invoice", async () => {
  toVoid = await invoiceOf(customer.id, "b");
  const voided = await stripe.invoices.voidInvoice(toVoid.id, {}, { idempotencyKey: `${run}_b_void` });
  expectEq("status", voided.status, "void");
  return voided.id;
});
await step("billing portal session", async () => {
  const session = await stripe.billingPortal.sessions.create({ customer: customer.id, return_url: "https://example.com/stripe-smoke-return" });
  if (!/^https?:\/\//.test(session.url)) throw new Error(`session url ${session.url}`);
  return session.url;
});
say("all steps passed");
