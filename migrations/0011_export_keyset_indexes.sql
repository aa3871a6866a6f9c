CREATE INDEX `invoices_finalized_ix` ON `invoices` (`finalized_at`,`id`);--> statement-breakpoint
CREATE INDEX `invoices_paid_ix` ON `invoices` (`paid_at`,`id`);