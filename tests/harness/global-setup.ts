import { randomBytes } from "node:crypto";
import type { TestProject } from "vitest/node";
import { startJwksServer } from "./jwks-server";
// @ts-expect-error -- plain ESM JavaScript tool, run by Node without a build step
import { startServer } from "../../tools/libsql-server/server.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { applyMigrations } from "../../tools/lib/migrate.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { generateLocalSecrets } from "../../tools/lib/secrets.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { startStripeEmulator } from "../../tools/stripe-emulator/server.mjs";
// @ts-expect-error -- plain ESM JavaScript tool
import { startClinicalReceiver } from "../../tools/clinical-receiver.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    /** Database URL handed to the Worker (a database of its own on the local server). */
    libsqlUrl: string;
    libsqlAuthToken: string;
    /** Root URL of the local libSQL server, for /dev/stats. */
    libsqlServerUrl: string;
    /** Fresh random secrets for this run (AUTH_DEV_SECRET, PATIENT_KEY_SECRET, ...). */
    secrets: Record<string, string>;
    /** The stand-in identity provider's JWKS URL and its private signing keys (JWK). */
    jwksUrl: string;
    jwksPrivateKeys: { rsa: Record<string, unknown>; ec: Record<string, unknown> };
    /** The local Stripe emulator's base URL. */
    stripeUrl: string;
    /** Webhook signing secrets of this run: the current one and the previous one (rotation). */
    webhookSecrets: { current: string; previous: string };
    /** The local receiver of clinical events (tools/clinical-receiver.mjs, with its test controls) and this run's signing secrets. */
    clinicalUrl: string;
    clinicalSecrets: { current: string; previous: string };
  }
}

/**
 * Starts the real local libSQL server (in memory, with a bearer token as Turso would require),
 * applies every migration to a fresh database on it, and hands the URL to the Worker tests.
 */
export default async function setup(project: TestProject) {
  const authToken = `test-${crypto.randomUUID()}`;
  const server = await startServer({ port: 0, memory: true, authToken });
  const url = `${server.url}/db/worker-tests/`;
  await applyMigrations({ url, authToken });
  project.provide("libsqlUrl", url);
  project.provide("libsqlAuthToken", authToken);
  project.provide("libsqlServerUrl", server.url);
  // The run's patient pseudonyms are at version 2 (one rotation done): offices onboarded through
  // the API start there, offices the harness seeds straight into the database are at version 1,
  // so both versions are exercised and a rotation has something to move.
  project.provide("secrets", { ...generateLocalSecrets(), PATIENT_KEY_CHAIN: randomBytes(32).toString("base64url") });
  const jwks = await startJwksServer();
  project.provide("jwksUrl", jwks.url);
  project.provide("jwksPrivateKeys", jwks.privateKeys as never);
  const stripe = await startStripeEmulator({ port: 0, rpsLimit: 1000 });
  // The account's default billing-portal configuration, as saving the customer portal settings in
  // Stripe's Dashboard makes it (docs/operations.md; `npm run stripe:setup` checks it): portal
  // sessions need it. A test of the refusal scopes it away (fault kind `portal_unconfigured`).
  const portal = await fetch(`${stripe.url}/_emulator/billing-portal/default`, { method: "POST", body: "{}" });
  if (portal.status !== 200) throw new Error(`the emulator's default portal configuration: ${portal.status}`);
  project.provide("stripeUrl", stripe.url);
  const whsec = () => `whsec_${randomBytes(24).toString("base64url").replace(/[-_]/g, "x")}`;
  project.provide("webhookSecrets", { current: whsec(), previous: whsec() });
  // The clinical application's stand-in: it knows only the current secret (the Worker signs with both).
  const clinicalSecrets = { current: randomBytes(32).toString("base64url"), previous: randomBytes(32).toString("base64url") };
  const clinical = await startClinicalReceiver({ port: 0, secrets: [clinicalSecrets.current], controls: true });
  project.provide("clinicalUrl", `${clinical.url}/events`);
  project.provide("clinicalSecrets", clinicalSecrets);
  return async () => {
    await clinical.close();
    await stripe.close();
    await jwks.close();
    await server.close();
  };
}
