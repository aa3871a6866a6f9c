import type Stripe from "stripe";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { stripeRequests } from "../db/stripe-requests";
import { ApiError } from "../http/problem";
import { sha256Hex } from "../security/crypto";
import { newId } from "../security/request-id";
import { EgressBlockedError, GuardedHttpClient, stripeClient, unwrapBlocked, type SentRequest } from "./client";
import type { GuardContext } from "./guard";
import { addLinesPayload, customerPayload, invoicePayload, type StripeOperation } from "./payloads";

export type GatewayDeps = {
  config: Pick<Config, "STRIPE_SECRET_KEY" | "STRIPE_API_BASE">;
  db: Database;
  officeId: string;
  requestId: string | null;
  guard: GuardContext;
  /** Records a blocked request on the office's audit chain (`phi_egress_blocked`). */
  onBlocked: (details: { operation: StripeOperation; kinds: string[]; fields: string[] }) => Promise<void>;
};

export type OfficeForStripe = { id: string; legalName: string; billingEmail: string };
export type InvoiceForStripe = {
  id: string;
  currency: string;
  periodStart: string;
  periodEnd: string;
  lines: { id: string; description: string; amount: number; periodStartAt?: number; periodEndAt?: number }[];
};

/**
 * The Stripe gateway: typed operations, each request through the guarded client with a
 * deterministic Idempotency-Key made of internal ids and the step (never personal data), and each
 * one recorded in the Stripe request log — the record of what crossed the boundary.
 */
export function stripeGateway(deps: GatewayDeps) {
  if (!deps.config.STRIPE_SECRET_KEY) throw new ApiError("SERVICE_UNAVAILABLE", "Stripe is not configured (STRIPE_SECRET_KEY).");
  const secret = deps.config.STRIPE_SECRET_KEY;

  async function call<T extends { id: string }>(operation: StripeOperation, idempotencyKey: string, run: (stripe: Stripe) => Promise<T>): Promise<T> {
    let sent: SentRequest | null = null;
    const http = new GuardedHttpClient(
      () => deps.guard,
      (req) => {
        sent = req;
      },
    );
    http.operation = operation;
    const stripe = stripeClient(secret, deps.config.STRIPE_API_BASE, http);
    const log = async (status: "succeeded" | "failed" | "blocked", extra: { httpStatus?: number; stripeIds?: string[]; errorCode?: string; method?: string; path?: string; body?: string }) => {
      const s = sent as SentRequest | null;
      await deps.db.insert(stripeRequests).values({
        id: newId("sreq"),
        officeId: deps.officeId,
        operation,
        method: s?.method ?? extra.method ?? "POST",
        path: s?.path ?? extra.path ?? "",
        idempotencyKey,
        bodySha256: await sha256Hex(s?.body ?? extra.body ?? ""),
        status,
        httpStatus: extra.httpStatus ?? null,
        stripeIds: extra.stripeIds ?? null,
        errorCode: extra.errorCode ?? null,
        requestId: deps.requestId,
        finishedAt: Date.now(),
      });
    };
    try {
      const result = await run(stripe);
      await log("succeeded", { httpStatus: 200, stripeIds: [result.id] });
      return result;
    } catch (err) {
      const error = unwrapBlocked(err);
      if (error instanceof EgressBlockedError) {
        const kinds = [...new Set(error.findings.map((f) => f.kind))];
        const fields = [...new Set(error.findings.map((f) => f.field))];
        console.error(JSON.stringify({ level: "error", msg: "phi_egress_blocked", operation, officeId: deps.officeId, kinds, fields }));
        await log("blocked", { errorCode: "phi_egress_blocked" });
        await deps.onBlocked({ operation, kinds, fields });
        throw new ApiError("UNPROCESSABLE", `The request to Stripe was blocked by the PHI egress guard (${kinds.join(", ")} in ${fields.join(", ")}); nothing was sent.`);
      }
      const stripeError = error as { statusCode?: number; code?: string; type?: string };
      await log("failed", { httpStatus: stripeError.statusCode, errorCode: stripeError.code ?? stripeError.type ?? "connection_error" });
      throw error;
    }
  }

  return {
    /** The office's Stripe customer, created once (the key makes a repeat return the same customer). */
    ensureCustomer(office: OfficeForStripe) {
      const payload = customerPayload.parse({ name: office.legalName, email: office.billingEmail, metadata: { office_ref: office.id } });
      return call("customer", `customer_${office.id}`, (s) => s.customers.create(payload, { idempotencyKey: `customer_${office.id}` }));
    },

    /**
     * An invoice in three calls whatever its size: create the draft, add every line at once,
     * finalize. Both payloads are checked against their schemas before the first call.
     */
    async pushInvoice(customerId: string, invoice: InvoiceForStripe) {
      const created = invoicePayload.parse({
        customer: customerId,
        currency: invoice.currency,
        collection_method: "charge_automatically",
        auto_advance: false,
        pending_invoice_items_behavior: "exclude",
        metadata: { office_ref: deps.officeId, invoice_ref: invoice.id, period_start: invoice.periodStart, period_end: invoice.periodEnd },
      });
      const lines = addLinesPayload.parse({
        lines: invoice.lines.map((l) => ({
          amount: l.amount,
          description: l.description,
          ...(l.periodStartAt && l.periodEndAt ? { period: { start: Math.floor(l.periodStartAt / 1000), end: Math.floor(l.periodEndAt / 1000) } } : {}),
          metadata: { line_ref: l.id },
        })),
      });
      const draft = await call("invoice", `invoice_${invoice.id}_create`, (s) => s.invoices.create(created, { idempotencyKey: `invoice_${invoice.id}_create` }));
      await call("addLines", `invoice_${invoice.id}_lines`, (s) => s.invoices.addLines(draft.id, lines, { idempotencyKey: `invoice_${invoice.id}_lines` }));
      return call("finalize", `invoice_${invoice.id}_finalize`, (s) => s.invoices.finalizeInvoice(draft.id, { auto_advance: true }, { idempotencyKey: `invoice_${invoice.id}_finalize` }));
    },
  };
}
