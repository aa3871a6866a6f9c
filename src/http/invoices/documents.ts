import { z } from "@hono/zod-openapi";
import type { invoices } from "../../db/invoices";
import { dataKeyring, encryptedColumns, openReference } from "../../security/data-keys";
import type { Config } from "../../config";

const documentsCol = encryptedColumns[3];

export const InvoiceDocumentsSchema = z
  .object({
    number: z.string().openapi({ example: "A1B2C3D4-0001", description: "Stripe's invoice number." }),
    hostedInvoiceUrl: z.string().url().openapi({ description: "Stripe's hosted invoice page (pay and download there). A bearer link: anyone with it can see the invoice." }),
    invoicePdf: z.string().url().nullable().openapi({ description: "The invoice's PDF at Stripe (a bearer link)." }),
  })
  .openapi("InvoiceDocuments", { description: "Once Stripe has finalized the invoice; null before (a draft, a zero total, a push under way)." });

export type InvoiceDocuments = z.infer<typeof InvoiceDocumentsSchema>;

/**
 * The documents of each invoice that has them, opened from their sealed column (docs: the links
 * are encrypted at rest). A row whose seal cannot be opened (a retired key) shows none and is logged.
 */
export async function invoiceDocuments(config: Config, rows: (typeof invoices.$inferSelect)[]): Promise<Map<string, InvoiceDocuments>> {
  const out = new Map<string, InvoiceDocuments>();
  const sealed = rows.filter((r) => r.stripeDocumentsRef && r.stripeNumber);
  if (sealed.length === 0) return out;
  const ring = await dataKeyring(config);
  await Promise.all(
    sealed.map(async (r) => {
      try {
        const links = JSON.parse(await openReference(ring, documentsCol, r.id, r.stripeDocumentsRef!)) as { hostedInvoiceUrl: string; invoicePdf: string | null };
        out.set(r.id, { number: r.stripeNumber!, hostedInvoiceUrl: links.hostedInvoiceUrl, invoicePdf: links.invoicePdf ?? null });
      } catch {
        console.error(JSON.stringify({ level: "error", msg: "invoice documents could not be opened", invoiceId: r.id }));
      }
    }),
  );
  return out;
}
