import { eq, sql } from "drizzle-orm";
import { taxModeOffered, type Config } from "../config";
import { invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { type StripeGateway, type StripeInvoiceState } from "../stripe/gateway";
import { boundedTax, type InvoiceTax } from "../stripe/invoice-tax";
import { taxRateNames } from "../stripe/payloads";
import * as clock from "../clock";
import { OUTBOX_ACTOR, type InvoiceRow, type OfficeRow, type OutboxHost, type Work } from "./stripe-work";

/** An invoice's tax basis (docs/payment-plan.md §11.4), fixed at its first push. */
export type TaxBasis = { mode: "none" } | { mode: "stripe_tax" } | { mode: "manual"; basisPoints: number; name: (typeof taxRateNames)[number] };

/** The basis the office's setting gives now (a mode the configuration no longer offers: none). */
export function taxBasisFor(office: Pick<OfficeRow, "taxMode" | "taxRateBps" | "taxRateName">, config: Pick<Config, "TAX_MODE">): TaxBasis {
  if (office.taxMode === "stripe_tax" && taxModeOffered(config, "stripe_tax")) return { mode: "stripe_tax" };
  if (office.taxMode === "manual" && taxModeOffered(config, "manual") && office.taxRateBps && (taxRateNames as readonly string[]).includes(office.taxRateName ?? "")) {
    return { mode: "manual", basisPoints: office.taxRateBps, name: office.taxRateName as (typeof taxRateNames)[number] };
  }
  return { mode: "none" };
}

/** The basis stored on an invoice (null: fixed before tax existed, or not yet: none). */
export function storedBasis(invoice: Pick<InvoiceRow, "taxMode" | "taxRateBps" | "taxRateName">): TaxBasis {
  if (invoice.taxMode === "stripe_tax") return { mode: "stripe_tax" };
  if (invoice.taxMode === "manual" && invoice.taxRateBps && (taxRateNames as readonly string[]).includes(invoice.taxRateName ?? "")) {
    return { mode: "manual", basisPoints: invoice.taxRateBps, name: invoice.taxRateName as (typeof taxRateNames)[number] };
  }
  return { mode: "none" };
}

/** The columns that fix a basis on an invoice row. */
export function basisColumns(basis: TaxBasis) {
  return { mode: basis.mode, bps: basis.mode === "manual" ? basis.basisPoints : null, name: basis.mode === "manual" ? basis.name : null };
}

/** The Stripe tax-rate key of a manual rate (what the office's stored Stripe id denotes). */
const rateKey = (b: { basisPoints: number; name: string }) => `${b.basisPoints}_${b.name}`;

/**
 * The tax side of an invoice's push (§11): holds for Stripe Tax without a usable address, the
 * office's Stripe tax rate, and the read-back of Stripe's tax figures.
 */
export class InvoiceTaxes {
  constructor(private readonly host: OutboxHost) {}

  /**
   * Whether the push must wait (§11.7): held until the office's profile changes and Stripe carries
   * the change; `hold` when Stripe Tax has no address to work from (the push is then held).
   */
  gate(office: OfficeRow, invoice: InvoiceRow, basis: TaxBasis): "go" | "waiting" | "hold" {
    // Held: until the profile changes, and the change reached the customer (a customer made later is made with it).
    if (invoice.stripeHeldProfile !== null && (office.profileVersion === invoice.stripeHeldProfile || (office.stripeCustomerRef !== null && office.stripeProfileVersion < office.profileVersion))) return "waiting";
    if (basis.mode === "stripe_tax" && !office.billingAddress) return "hold";
    return "go";
  }

  /** Records a hold: the reason on the invoice (`stripeError`), the profile version it waits to change from. */
  async hold(invoice: InvoiceRow, reason: string, profileVersion: number): Promise<void> {
    const db = this.host.db;
    await this.host.commit(
      "stripe.push_held",
      () => [db.run(sql`UPDATE ${invoices} SET stripe_error = ${reason}, stripe_held_profile = ${profileVersion}, updated_at = ${clock.now()} WHERE id = ${invoice.id}`)],
      [{ ...OUTBOX_ACTOR, requestId: `outbox:push:${invoice.id}`, action: "stripe.push_held", outcome: "failed", targetIds: [invoice.id], details: { reason, profileVersion } }],
    );
    invoice.stripeError = reason;
    invoice.stripeHeldProfile = profileVersion;
    console.warn(JSON.stringify({ level: "warn", msg: "stripe push held for tax", officeId: this.host.officeId, invoiceId: invoice.id, reason }));
  }

  /** The invoice's tax for its create request; a manual rate's Stripe tax rate is made once per office and rate. */
  async stripeTax(work: Pick<Work, "office">, basis: TaxBasis, gateway: StripeGateway): Promise<InvoiceTax | undefined> {
    if (basis.mode === "none") return undefined;
    if (basis.mode === "stripe_tax") return { kind: "stripe_tax" };
    const office = work.office;
    if (office.stripeTaxRateId && office.stripeTaxRateKey === rateKey(basis)) return { kind: "manual", taxRateId: office.stripeTaxRateId };
    const rate = await gateway.createTaxRate(basis.basisPoints, basis.name);
    const db = this.host.db;
    await this.host.commit(
      "stripe.tax_rate",
      () => [db.run(sql`UPDATE ${offices} SET stripe_tax_rate_id = ${rate.id}, stripe_tax_rate_key = ${rateKey(basis)} WHERE ${eq(offices.id, office.id)}`)],
      [{ ...OUTBOX_ACTOR, requestId: `outbox:taxrate:${rateKey(basis)}`, action: "stripe.tax_rate_created", outcome: "succeeded", targetIds: [office.id], details: { basisPoints: basis.basisPoints, name: basis.name } }],
    );
    office.stripeTaxRateId = rate.id;
    office.stripeTaxRateKey = rateKey(basis);
    return { kind: "manual", taxRateId: rate.id };
  }

  /**
   * The tax columns of a finalized invoice from Stripe's figures (§11.6), or none: no tax basis,
   * or Stripe's figures out of bounds (logged; our invoice keeps no tax figure).
   */
  readBack(invoice: InvoiceRow, basis: TaxBasis, final: Pick<StripeInvoiceState, "totalExcludingTax" | "taxAmount" | "status">) {
    if (basis.mode === "none" || final.status === "draft") return null;
    const tax = boundedTax(invoice.total, final);
    if (!tax) {
      console.error(JSON.stringify({ level: "error", msg: "stripe tax figures outside our invoice's total; no tax recorded", officeId: this.host.officeId, invoiceId: invoice.id, ours: invoice.total, stripeTotalExcludingTax: final.totalExcludingTax, stripeTax: final.taxAmount }));
      return null;
    }
    return tax;
  }
}
