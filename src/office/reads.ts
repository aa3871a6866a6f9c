import { and, asc, desc, eq, gte, lt, lte, or, sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/client";
import { invoiceLines, invoices } from "../db/invoices";
import { offices } from "../db/offices";
import { refunds } from "../db/refunds";
import { creditNotes } from "../db/credit-notes";
import { coupons, officeDiscounts } from "../db/discounts";

/** The reads an office's billing users may make (docs/payment-plan.md; roles in docs/security.md). */
export type OfficeRead =
  | { kind: "office" }
  | { kind: "usage" }
  | { kind: "invoices"; status?: string; invoiceKind?: string; periodFrom?: string; periodTo?: string; after?: { createdAt: number; id: string }; limit: number }
  | { kind: "invoice"; invoiceId: string };

/** The audit action of each read. */
export const readActions = { office: "office.read", usage: "usage.read", invoices: "invoice.list", invoice: "invoice.read" } as const;

/** The queries of a read, for one batch with its audit entry. The first always reads the office. */
export function readQueries(db: Database, officeId: string, read: OfficeRead) {
  const office = db.select().from(offices).where(eq(offices.id, officeId));
  switch (read.kind) {
    case "office":
      return [office, discountRead(db, officeId)] as const;
    case "usage": {
      const draft = sql`(SELECT id FROM invoices WHERE office_id = ${officeId} AND kind = 'monthly' AND status = 'draft')`;
      return [office, db.select().from(invoices).where(sql`${invoices.id} = ${draft}`), db.select().from(invoiceLines).where(sql`${invoiceLines.invoiceId} = ${draft}`).orderBy(asc(invoiceLines.position), asc(invoiceLines.rankFrom))] as const;
    }
    case "invoices": {
      const filters: SQL[] = [eq(invoices.officeId, officeId)];
      if (read.status) filters.push(sql`${invoices.status} = ${read.status}`);
      if (read.invoiceKind) filters.push(sql`${invoices.kind} = ${read.invoiceKind}`);
      if (read.periodFrom) filters.push(gte(invoices.periodStart, read.periodFrom));
      if (read.periodTo) filters.push(lte(invoices.periodStart, read.periodTo));
      if (read.after) filters.push(or(lt(invoices.createdAt, read.after.createdAt), and(eq(invoices.createdAt, read.after.createdAt), lt(invoices.id, read.after.id)))!);
      return [office, db.select().from(invoices).where(and(...filters)).orderBy(desc(invoices.createdAt), desc(invoices.id)).limit(read.limit + 1)] as const;
    }
    case "invoice":
      return [
        office,
        db.select().from(invoices).where(and(eq(invoices.id, read.invoiceId), eq(invoices.officeId, officeId))),
        db.select().from(invoiceLines).where(sql`${invoiceLines.invoiceId} = ${read.invoiceId} AND ${invoiceLines.invoiceId} IN (SELECT id FROM invoices WHERE office_id = ${officeId})`).orderBy(asc(invoiceLines.position), asc(invoiceLines.rankFrom)),
        db.select().from(refunds).where(and(eq(refunds.invoiceId, read.invoiceId), eq(refunds.officeId, officeId))).orderBy(asc(refunds.createdAt), asc(refunds.id)),
        db.select().from(creditNotes).where(and(eq(creditNotes.invoiceId, read.invoiceId), eq(creditNotes.officeId, officeId))).orderBy(asc(creditNotes.createdAt), asc(creditNotes.id)),
      ] as const;
  }
}

export type ReadResult = {
  office: typeof offices.$inferSelect | null;
  invoices: (typeof invoices.$inferSelect)[];
  lines: (typeof invoiceLines.$inferSelect)[];
  /** An invoice read: its refunds, each with its status (docs/payment-plan.md §8.7). */
  refunds: (typeof refunds.$inferSelect)[];
  /** An invoice read: its credit notes (docs/payment-plan.md §8.10). */
  creditNotes?: (typeof creditNotes.$inferSelect)[];
  /** The office read: its open discount (§6.10), if any. */
  discount?: OfficeDiscountRow | null;
};

export type OfficeDiscountRow = {
  id: string;
  code: string;
  percentOff: number | null;
  amountOff: number | null;
  currency: string | null;
  duration: "once" | "repeating" | "forever";
  durationCycles: number | null;
  invoicesUsed: number;
  createdAt: number;
};

/** An office's open discount with its coupon's terms. */
export function discountRead(db: Database, officeId: string) {
  return db
    .select({
      id: officeDiscounts.id,
      code: coupons.code,
      percentOff: coupons.percentOff,
      amountOff: coupons.amountOff,
      currency: coupons.currency,
      duration: coupons.duration,
      durationCycles: coupons.durationCycles,
      invoicesUsed: officeDiscounts.invoicesUsed,
      createdAt: officeDiscounts.createdAt,
    })
    .from(officeDiscounts)
    .innerJoin(coupons, eq(coupons.id, officeDiscounts.couponId))
    .where(sql`${officeDiscounts.officeId} = ${officeId} AND ${officeDiscounts.endedAt} IS NULL`);
}
