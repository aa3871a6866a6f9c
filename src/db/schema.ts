/** The billing database schema: one file per entity, gathered here for drizzle and drizzle-kit. */
export * from "./plans";
export * from "./offices";
export * from "./patients";
export * from "./invoices";
export * from "./refunds";
export * from "./audit";
export * from "./stripe-requests";
export * from "./webhook-events";
export * from "./job-runs";
export * from "./discounts";
export * from "./credit-notes";
export * from "./clinical-events";
