ALTER TABLE `offices` ADD `billing_start` text DEFAULT '1970-01-01' NOT NULL;--> statement-breakpoint
ALTER TABLE `offices` ADD `cycle_end_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `offices_due_ix` ON `offices` (`cycle_end_at`);--> statement-breakpoint
ALTER TABLE `invoice_lines` ADD `internal_note` text;--> statement-breakpoint
ALTER TABLE `invoices` ADD `period_start_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `invoices` ADD `period_end_at` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `invoices` ADD `in_trial` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `invoices_one_draft_uq` ON `invoices` (`office_id`) WHERE "invoices"."kind" = 'monthly' AND "invoices"."status" = 'draft';