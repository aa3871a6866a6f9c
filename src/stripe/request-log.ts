import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { stripeRequests } from "../db/stripe-requests";

/** One row of the Stripe request log: an attempt, what crossed (its body's hash) and Stripe's answer. */
export type StripeRequestRow = typeof stripeRequests.$inferInsert;

/**
 * Where the gateway writes its request log. The office outbox keeps rows and writes them with its
 * own commits (src/office/stripe-request-log.ts); anywhere else each row is written at once.
 */
export interface RequestLogSink {
  record(row: StripeRequestRow): void | Promise<void>;
  /** When the key was first used by our log (our clock), or null. */
  firstUse(key: string): Promise<number | null>;
}

/** When the database's request log first recorded a request with this idempotency key, or null. */
export async function firstUseInDatabase(db: Database, key: string): Promise<number | null> {
  const [row] = await db
    .select({ at: sql<number | null>`MIN(${stripeRequests.finishedAt})` })
    .from(stripeRequests)
    .where(sql`${stripeRequests.idempotencyKey} = ${key}`);
  return row?.at ?? null;
}

/** Each row written at once, in its own round trip (the webhook receiver, tools, tests). */
export function directRequestLog(db: Database): RequestLogSink {
  return {
    async record(row) {
      await db.insert(stripeRequests).values(row);
    },
    firstUse: (key) => firstUseInDatabase(db, key),
  };
}
