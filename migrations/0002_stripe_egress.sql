CREATE TABLE `refunds` (
	`id` text PRIMARY KEY NOT NULL,
	`office_id` text NOT NULL,
	`invoice_id` text NOT NULL,
	`amount` integer NOT NULL,
	`reason` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`stripe_refund_ref` text,
	`stripe_refund_index` text,
	`error_code` text,
	`requested_by` text NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`invoice_id`) REFERENCES `invoices`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "refunds_amount_ck" CHECK("refunds"."amount" > 0),
	CONSTRAINT "refunds_status_ck" CHECK("refunds"."status" IN ('pending','succeeded','failed'))
);
--> statement-breakpoint
CREATE INDEX `refunds_invoice_ix` ON `refunds` (`invoice_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `refunds_pending_ix` ON `refunds` (`status`,`office_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `refunds_stripe_refund_uq` ON `refunds` (`stripe_refund_index`);--> statement-breakpoint
ALTER TABLE `invoices` ADD `stripe_error` text;--> statement-breakpoint
ALTER TABLE `invoices` ADD `payment_failed_at` integer;--> statement-breakpoint
CREATE INDEX `invoices_stripe_pending_ix` ON `invoices` (`office_id`,`stripe_state`,`status`);