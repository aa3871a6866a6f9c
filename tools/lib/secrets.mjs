// Fresh random values for the local secrets (dev runner and test harness); never committed.
import { randomBytes } from "node:crypto";

/** @returns {Record<string, string>} */
export function generateLocalSecrets() {
  return {
    AUTH_DEV_SECRET: randomBytes(32).toString("base64url"),
    PATIENT_KEY_SECRET: randomBytes(32).toString("base64url"),
    DATA_ENCRYPTION_KEY: `k1:${randomBytes(32).toString("base64url")}`,
    DATA_INDEX_KEY: randomBytes(32).toString("base64url"),
    // The audit chains' MAC keyring: <keyId>:<base64 32 bytes>[,<older>...], the first MACs.
    AUDIT_KEY: `a1:${randomBytes(32).toString("base64url")}`,
    // The local Stripe emulator signs its webhook events with this (`npm run dev` hands it over).
    STRIPE_WEBHOOK_SECRET: `whsec_${randomBytes(24).toString("base64")}`,
    // Signs the events for the clinical application; `npm run dev`'s local receiver verifies with it.
    CLINICAL_WEBHOOK_SECRET: randomBytes(32).toString("base64url"),
  };
}
