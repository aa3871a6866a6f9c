import { sql, type SQL } from "drizzle-orm";
import { payableSql } from "../db/billing-sql";
import type { Cell, MaybeCell } from "./csv";

/**
 * The datasets accountants export (docs/analytics.md, "Exports"): their columns, and one keyset
 * page of their rows. Amounts in minor units, instants ISO 8601 UTC. Never a patient: lines are
 * aggregated counts and fixed-template descriptions; staff notes are not exported.
 */

type Row = Record<string, Cell>;
type Range = { fromAt: number; toAt: number; officeId?: string };

export type Dataset = {
  columns: readonly string[];
  /** The keyset of the last row of a page: where the next page starts. */
  key: (row: Row) => MaybeCell[];
  page: (range: Range, after: MaybeCell[] | null, limit: number) => SQL;
  cells: (row: Row) => MaybeCell[];
};

const iso = (v: MaybeCell) => (typeof v === "number" ? new Date(v).toISOString() : null);
const office = (r: Range, column: string) => (r.officeId ? sql` AND ${sql.raw(column)} = ${r.officeId}` : sql``);
const afterKey = (columns: string, after: MaybeCell[] | null) =>
  after ? sql` AND (${sql.raw(columns)}) > (${sql.join(after.map((v) => sql`${v ?? null}`), sql`, `)})` : sql``;

const invoiceColumns = [
  "invoice_id", "office_id", "office_legal_name", "kind", "status", "currency", "period_start", "period_end", "finalized_at", "due_at", "paid_at", "voided_at",
  "number", "collection_method", "billable_patients", "subtotal", "total", "tax_amount", "total_including_tax", "amount_credited", "amount_paid", "amount_refunded",
] as const;

/** Credit notes that count against an invoice (pending at Stripe, or issued). */
const credited = sql`(SELECT COALESCE(SUM(c.amount), 0) FROM credit_notes c WHERE c.invoice_id = i.id AND c.status IN ('pending','issued'))`;

export const datasets = {
  invoices: {
    columns: invoiceColumns,
    key: (r) => [r.finalized_at, r.id],
    page: (range, after, limit) => sql`SELECT i.id, i.office_id, o.legal_name, i.kind, i.status, i.currency, i.period_start, i.period_end, i.finalized_at, i.due_at,
        i.paid_at, i.voided_at, i.stripe_number, i.collection_method, i.billable_patients, i.subtotal, i.total,
        COALESCE(i.tax_amount, 0) AS tax_amount, ${payableSql("i")} AS total_including_tax, ${credited} AS amount_credited, i.amount_paid, i.amount_refunded
      FROM invoices i JOIN offices o ON o.id = i.office_id
      WHERE i.finalized_at >= ${range.fromAt} AND i.finalized_at < ${range.toAt}${office(range, "i.office_id")}${afterKey("i.finalized_at, i.id", after)}
      ORDER BY i.finalized_at, i.id LIMIT ${limit}`,
    cells: (r) => [r.id, r.office_id, r.legal_name, r.kind, r.status, r.currency, r.period_start, r.period_end, iso(r.finalized_at), iso(r.due_at), iso(r.paid_at), iso(r.voided_at),
      r.stripe_number, r.collection_method, r.billable_patients, r.subtotal, r.total, r.tax_amount, r.total_including_tax, r.amount_credited, r.amount_paid, r.amount_refunded],
  },
  "invoice-lines": {
    columns: ["invoice_id", "line_id", "position", "office_id", "currency", "invoice_finalized_at", "kind", "description", "category", "quantity", "unit_amount", "rank_from", "rank_to", "amount", "period_start", "period_end"],
    key: (r) => [r.finalized_at, r.invoice_id, r.position, r.id],
    page: (range, after, limit) => sql`SELECT l.invoice_id, l.id, l.position, i.office_id, i.currency, i.finalized_at, l.kind, l.description, l.category, l.quantity, l.unit_amount,
        l.rank_from, l.rank_to, l.amount, l.period_start, l.period_end
      FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id
      WHERE i.finalized_at >= ${range.fromAt} AND i.finalized_at < ${range.toAt}${office(range, "i.office_id")}${afterKey("i.finalized_at, l.invoice_id, l.position, l.id", after)}
      ORDER BY i.finalized_at, l.invoice_id, l.position, l.id LIMIT ${limit}`,
    cells: (r) => [r.invoice_id, r.id, r.position, r.office_id, r.currency, iso(r.finalized_at), r.kind, r.description, r.category, r.quantity, r.unit_amount, r.rank_from, r.rank_to, r.amount, r.period_start, r.period_end],
  },
  // A payment is an invoice's settlement as Stripe reported it (the invoice's paid amount and time).
  payments: {
    columns: ["invoice_id", "office_id", "currency", "amount_paid", "paid_at", "collection_method", "number", "invoice_total", "amount_refunded"],
    key: (r) => [r.paid_at, r.id],
    page: (range, after, limit) => sql`SELECT i.id, i.office_id, i.currency, i.amount_paid, i.paid_at, i.collection_method, i.stripe_number, i.total, i.amount_refunded
      FROM invoices i
      WHERE i.paid_at >= ${range.fromAt} AND i.paid_at < ${range.toAt} AND i.amount_paid > 0${office(range, "i.office_id")}${afterKey("i.paid_at, i.id", after)}
      ORDER BY i.paid_at, i.id LIMIT ${limit}`,
    cells: (r) => [r.id, r.office_id, r.currency, r.amount_paid, iso(r.paid_at), r.collection_method, r.stripe_number, r.total, r.amount_refunded],
  },
  // Refunds by the time they were requested, whatever their state (its column says).
  refunds: {
    columns: ["refund_id", "invoice_id", "office_id", "currency", "amount", "reason", "status", "source", "error_code", "created_at", "updated_at"],
    key: (r) => [r.created_at, r.id],
    page: (range, after, limit) => sql`SELECT r.id, r.invoice_id, r.office_id, i.currency, r.amount, r.reason, r.status, r.requested_by, r.error_code, r.created_at, r.updated_at
      FROM refunds r JOIN invoices i ON i.id = r.invoice_id
      WHERE r.created_at >= ${range.fromAt} AND r.created_at < ${range.toAt}${office(range, "r.office_id")}${afterKey("r.created_at, r.id", after)}
      ORDER BY r.created_at, r.id LIMIT ${limit}`,
    // The requester is a person's subject: only whether Stripe or the API asked is exported.
    cells: (r) => [r.id, r.invoice_id, r.office_id, r.currency, r.amount, r.reason, r.status, r.requested_by === "stripe" ? "stripe" : "api", r.error_code, iso(r.created_at), iso(r.updated_at)],
  },
  // Credit notes by the time they were made, whatever their state (its column says); the memo is its fixed template's key
  // (null, like the reason may be, for one made in Stripe's Dashboard: `source` stripe — its free-text memo is never stored).
  "credit-notes": {
    columns: ["credit_note_id", "invoice_id", "office_id", "currency", "amount", "reason", "memo", "settlement", "status", "source", "error_code", "created_at", "updated_at"],
    key: (r) => [r.created_at, r.id],
    page: (range, after, limit) => sql`SELECT c.id, c.invoice_id, c.office_id, i.currency, c.amount, c.reason, c.memo, c.settlement, c.status, c.source, c.error_code, c.created_at, c.updated_at
      FROM credit_notes c JOIN invoices i ON i.id = c.invoice_id
      WHERE c.created_at >= ${range.fromAt} AND c.created_at < ${range.toAt}${office(range, "c.office_id")}${afterKey("c.created_at, c.id", after)}
      ORDER BY c.created_at, c.id LIMIT ${limit}`,
    cells: (r) => [r.id, r.invoice_id, r.office_id, r.currency, r.amount, r.reason, r.memo, r.settlement, r.status, r.source, r.error_code, iso(r.created_at), iso(r.updated_at)],
  },
} satisfies Record<string, Dataset>;

export type DatasetName = keyof typeof datasets;
export const datasetNames = Object.keys(datasets) as [DatasetName, ...DatasetName[]];
