/**
 * The payment lifecycle of an invoice and the dunning state of an office (docs/payment-plan.md §9),
 * as pure rules. Stripe does not order its events: an invoice only ever moves forward, so a late
 * event can never undo a later state (paid stays paid, void stays void).
 */
export type InvoiceStatus = "draft" | "open" | "paid" | "void" | "uncollectible";

/**
 * The moves Stripe's news may make. A draft is ours alone — Stripe never saw it (drafts are never
 * sent) — so nothing Stripe reports moves it; only our own close finalizes it.
 */
const forward: Record<InvoiceStatus, readonly InvoiceStatus[]> = {
  draft: [],
  open: ["paid", "void", "uncollectible"],
  uncollectible: ["paid", "void"],
  paid: [],
  void: [],
};

/** Whether an invoice may move from `from` to `to` (never backwards, never out of paid or void). */
export const canMove = (from: InvoiceStatus, to: InvoiceStatus): boolean => forward[from].includes(to);

/** The invoice status a Stripe invoice event reports; null for payment attempts (no status change). */
export function eventStatus(type: string): InvoiceStatus | null {
  switch (type) {
    case "invoice.finalized":
      return "open";
    case "invoice.paid":
    case "invoice.payment_succeeded":
      return "paid";
    case "invoice.voided":
      return "void";
    case "invoice.marked_uncollectible":
      return "uncollectible";
    default:
      return null;
  }
}

export type Decision =
  /** Apply the reported status. */
  | { kind: "apply"; to: InvoiceStatus }
  /** Nothing to change: the same state again (a duplicate), or an event older than our state. */
  | { kind: "none"; why: "same" | "stale" }
  /** Ours is final and the event says otherwise: ask Stripe for the invoice's current state. */
  | { kind: "conflict" };

/** What to do with a reported status, given ours. */
export function decide(ours: InvoiceStatus, reported: InvoiceStatus): Decision {
  if (ours === "draft") return { kind: "none", why: "stale" };
  if (ours === reported) return { kind: "none", why: "same" };
  if (canMove(ours, reported)) return { kind: "apply", to: reported };
  // "open" reported after we moved on is simply late (finalized arrives after paid).
  if (reported === "open") return { kind: "none", why: "stale" };
  return { kind: "conflict" };
}

/** After Stripe's current state was read: apply it if it moves ours forward, else keep ours. */
export function decideFromStripe(ours: InvoiceStatus, stripe: InvoiceStatus): Decision {
  if (ours === stripe) return { kind: "none", why: "stale" };
  if (canMove(ours, stripe)) return { kind: "apply", to: stripe };
  return { kind: "none", why: "stale" };
}

export const DAY_MS = 86_400_000;

/** When a past-due office is suspended: `graceDays` after its first unpaid failure. */
export const suspensionAt = (pastDueSince: number, graceDays: number): number => pastDueSince + graceDays * DAY_MS;
