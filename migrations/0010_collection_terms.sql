ALTER TABLE `offices` ADD `net_terms_days` integer;--> statement-breakpoint
ALTER TABLE `invoices` ADD `days_until_due` integer;