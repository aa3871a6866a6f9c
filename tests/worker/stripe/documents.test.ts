import { SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { invoices } from "../../../src/db/invoices";
import { bearer, mintToken } from "../../harness/auth";
import { testDb } from "../../harness/seed";
import { pushedOffice, stripeObject } from "../../harness/stripe";

type Documents = { number: string; hostedInvoiceUrl: string; invoicePdf: string | null } | null;
type InvoiceView = { id: string; kind: string; status: string; documents: Documents };

async function get(path: string, role: "platform_admin" | "office_admin" | "office_viewer", officeId: string) {
  const res = await SELF.fetch(`https://billing.test/v1/offices/${officeId}${path}`, { headers: bearer(await mintToken(role, role === "platform_admin" ? [] : [officeId])) });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}

describe("invoice documents (issue 16 item 3)", () => {
  it("a finalized invoice shows Stripe's number, hosted page and PDF to the office's roles; stored sealed, never in clear", async () => {
    const { officeId, setup, stripeId } = await pushedOffice();
    const stripeInvoice = await stripeObject<Stripe.Invoice>(`/v1/invoices/${stripeId}`);
    const expected = { number: stripeInvoice.number, hostedInvoiceUrl: stripeInvoice.hosted_invoice_url, invoicePdf: stripeInvoice.invoice_pdf };
    expect(expected.number).toMatch(/^[A-Z0-9]+-\d{4}$/);
    for (const role of ["platform_admin", "office_admin", "office_viewer"] as const) {
      const one = (await get(`/invoices/${setup.id}`, role, officeId)) as InvoiceView;
      expect(one.documents).toEqual(expected);
    }
    const page = (await get(`/invoices`, "office_viewer", officeId)) as { data: InvoiceView[] };
    expect(page.data.find((i) => i.id === setup.id)!.documents).toEqual(expected);
    // The draft has none (nothing on Stripe).
    expect(page.data.find((i) => i.status === "draft")!.documents).toBeNull();
    // At rest: the number in clear (it is printed on the documents), the links sealed.
    const [row] = await testDb().select().from(invoices).where(eq(invoices.id, setup.id));
    expect(row!.stripeNumber).toBe(expected.number);
    expect(row!.stripeDocumentsRef).toBeTruthy();
    expect(row!.stripeDocumentsRef).not.toContain("http");
    expect(row!.stripeDocumentsRef).not.toContain(stripeId);
  });

  it("a sealed value moved to another invoice's row does not open there (bound to its row)", async () => {
    const a = await pushedOffice();
    const b = await pushedOffice();
    const db = testDb();
    const [rowA] = await db.select().from(invoices).where(eq(invoices.id, a.setup.id));
    await db.update(invoices).set({ stripeDocumentsRef: rowA!.stripeDocumentsRef }).where(eq(invoices.id, b.setup.id));
    const one = (await get(`/invoices/${b.setup.id}`, "office_admin", b.officeId)) as InvoiceView;
    expect(one.documents).toBeNull();
  });
});
