#!/usr/bin/env node
// npm run stripe:setup -- --webhook-url https://<host>/webhooks/stripe [--return-url <url>]
// Configures a Stripe account for the Worker, idempotently: the webhook endpoint (api_version
// pinned, exactly the events the Worker handles), the billing-portal configuration (payment
// method updates, invoice history), and a check of the key's read permissions. Prints what it did;
// the signing secret of a newly created endpoint is printed once, here, and written nowhere.
import { parseCli, usageError } from "./lib/cli.mjs";
import { handledEvents, pinnedApiVersion, stripeClient, stripeEnv } from "./lib/stripe-tool.mjs";

const USAGE = `usage: npm run stripe:setup -- --webhook-url <url> [--return-url <url>]
Creates or updates, idempotently, on the Stripe account of STRIPE_SECRET_KEY (env) at STRIPE_API_BASE
(env; default https://api.stripe.com): the webhook endpoint (api_version pinned, the events the
Worker handles), the billing-portal configuration (update payment method, view invoices), and
checks the read permissions on each resource the Worker uses of STRIPE_WORKER_KEY (env: the Worker's
restricted key, when the setup key is another one; default STRIPE_SECRET_KEY). Prints created /
updated / unchanged; a new endpoint's signing secret is printed once (put it in STRIPE_WEBHOOK_SECRET).
  --webhook-url <url>  the Worker's webhook URL, https://<host>/webhooks/stripe (or env WEBHOOK_URL)
  --return-url <url>   the portal's default return URL (optional)
  -h, --help           this text
Exit: 0 all done, 1 a step failed or a permission is missing, 2 bad arguments.`;

const { values: args } = parseCli("stripe:setup", USAGE, { "webhook-url": { type: "string" }, "return-url": { type: "string" } });
const webhookUrl = args["webhook-url"] ?? process.env.WEBHOOK_URL;
if (!webhookUrl) usageError("stripe:setup", USAGE, "--webhook-url (or WEBHOOK_URL) is required");
const { key, base } = stripeEnv();
if (!key) usageError("stripe:setup", USAGE, "STRIPE_SECRET_KEY is not set");

const version = pinnedApiVersion();
const events = handledEvents();
const stripe = stripeClient(key, base);
/** The key whose permissions are checked: the Worker's, when given apart from the setup key. */
const workerKey = process.env.STRIPE_WORKER_KEY || key;
const probeClient = workerKey === key ? stripe : stripeClient(workerKey, base);
const MANAGED = "office-billing-stripe-setup";
let failed = false;
const say = (s) => console.log(`stripe:setup: ${s}`);
const sameSet = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

async function webhookEndpoint() {
  const all = await stripe.webhookEndpoints.list({ limit: 100 }).autoPagingToArray({ limit: 1000 });
  const found = all.find((e) => e.url === webhookUrl);
  if (!found) {
    const created = await stripe.webhookEndpoints.create({ url: webhookUrl, api_version: version, enabled_events: events, description: "office billing (npm run stripe:setup)", metadata: { managed_by: MANAGED } });
    say(`webhook endpoint ${created.id}: created (${webhookUrl}, api_version ${created.api_version}, ${events.length} events)`);
    // Printed once, to stdout only: put it in the Worker's env, it is not shown again by Stripe.
    console.log(`STRIPE_WEBHOOK_SECRET=${created.secret}`);
    say("put that secret in the Worker's env: npx wrangler secret put STRIPE_WEBHOOK_SECRET");
    return;
  }
  if (found.api_version !== version) {
    // Stripe cannot change an endpoint's api_version: a new endpoint (new secret) replaces it.
    failed = true;
    say(`webhook endpoint ${found.id}: api_version is ${found.api_version ?? "the account default"}, not ${version}; Stripe cannot change it in place. Delete it (or give it another URL) and run stripe:setup again, then set the new STRIPE_WEBHOOK_SECRET (docs/operations.md)`);
    return;
  }
  if (sameSet(found.enabled_events, events) && found.status === "enabled") {
    say(`webhook endpoint ${found.id}: unchanged`);
    return;
  }
  await stripe.webhookEndpoints.update(found.id, { enabled_events: events, disabled: false });
  say(`webhook endpoint ${found.id}: updated (enabled_events${found.status === "enabled" ? "" : ", enabled"})`);
}

async function portalConfiguration() {
  const configs = await stripe.billingPortal.configurations.list({ active: true, limit: 100 }).autoPagingToArray({ limit: 1000 });
  // The default configuration is the one the Worker's sessions use; else the one this script made.
  const found = configs.find((c) => c.is_default) ?? configs.find((c) => c.metadata?.managed_by === MANAGED);
  const returnUrl = args["return-url"];
  const features = { payment_method_update: { enabled: true }, invoice_history: { enabled: true } };
  if (!found) {
    const created = await stripe.billingPortal.configurations.create({ features, metadata: { managed_by: MANAGED }, ...(returnUrl ? { default_return_url: returnUrl } : {}) });
    say(`billing portal configuration ${created.id}: created (payment method update, invoice history)`);
    if (!created.is_default) say("note: it is not the account's default configuration; the Worker's portal sessions use the default one (Stripe dashboard: Settings → Billing → Customer portal)");
    return;
  }
  const f = found.features;
  const ok = f.payment_method_update.enabled && f.invoice_history.enabled && (!returnUrl || found.default_return_url === returnUrl);
  if (ok) {
    say(`billing portal configuration ${found.id}${found.is_default ? " (default)" : ""}: unchanged`);
    return;
  }
  await stripe.billingPortal.configurations.update(found.id, { features, ...(returnUrl ? { default_return_url: returnUrl } : {}) });
  say(`billing portal configuration ${found.id}${found.is_default ? " (default)" : ""}: updated (payment method update, invoice history)`);
}

/**
 * The key's read permissions: a retrieve of an id that does not exist answers 404 with the
 * permission and 403 without it, so nothing is read or changed. Write permissions cannot be
 * checked without writing (docs/operations.md lists them; npm run stripe:smoke exercises them).
 */
async function permissions() {
  const s = probeClient;
  say(`checking the read permissions of ${workerKey === key ? "STRIPE_SECRET_KEY" : "STRIPE_WORKER_KEY"} (${workerKey.slice(0, 8)}…)`);
  const probes = [
    ["customers", () => s.customers.retrieve("cus_stripesetupprobe")],
    ["invoices", () => s.invoices.retrieve("in_stripesetupprobe")],
    ["charges", () => s.charges.retrieve("ch_stripesetupprobe")],
    ["invoice payments", () => s.invoicePayments.retrieve("inpay_stripesetupprobe")],
    ["refunds", () => s.refunds.retrieve("re_stripesetupprobe")],
    ["billing portal configurations", () => s.billingPortal.configurations.retrieve("bpc_stripesetupprobe")],
    ["checkout sessions", () => s.checkout.sessions.retrieve("cs_test_stripesetupprobe")],
    ["setup intents", () => s.setupIntents.retrieve("seti_stripesetupprobe")],
    ["payment methods", () => s.paymentMethods.retrieve("pm_stripesetupprobe")],
  ];
  const missingPerms = [];
  for (const [name, probe] of probes) {
    try {
      await probe();
      say(`permission ${name}: read ok`);
    } catch (e) {
      if (e?.statusCode === 404) say(`permission ${name}: read ok`);
      else {
        missingPerms.push(name);
        say(`permission ${name}: FAILED (${e?.statusCode ?? "no answer"} ${e?.type ?? ""}: ${e?.message ?? e})`);
      }
    }
  }
  if (missingPerms.length) {
    failed = true;
    say(`the key cannot read: ${missingPerms.join(", ")} (docs/operations.md lists the scopes)`);
  }
}

say(`${base} (api_version ${version})`);
for (const [name, step] of [["permissions", permissions], ["webhook endpoint", webhookEndpoint], ["billing portal", portalConfiguration]]) {
  try {
    await step();
  } catch (e) {
    failed = true;
    say(`${name}: FAILED (${e?.statusCode ?? "no answer"} ${e?.type ?? ""}: ${e?.message ?? e})`);
  }
}
process.exit(failed ? 1 : 0);
