CREATE TABLE `credit_notes` (
	`id` text PRIMARY KEY NOT NULL,
	`office_id` text NOT NULL,
	`invoice_id` text NOT NULL,
	`amount` integer NOT NULL,
	`lines` text,
	`reason` text NOT NULL,
	`memo` text NOT NULL,
	`settlement` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`stripe_credit_note_ref` text,
	`stripe_credit_note_index` text,
	`error_code` text,
	`requested_by` text NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`invoice_id`) REFERENCES `invoices`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "credit_notes_amount_ck" CHECK("credit_notes"."amount" > 0),
	CONSTRAINT "credit_notes_status_ck" CHECK("credit_notes"."status" IN ('pending','issued','void','failed')),
	CONSTRAINT "credit_notes_settlement_ck" CHECK("credit_notes"."settlement" IN ('none','refund','customer_balance'))
);
--> statement-breakpoint
CREATE INDEX `credit_notes_invoice_ix` ON `credit_notes` (`invoice_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `credit_notes_pending_ix` ON `credit_notes` (`status`,`office_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `credit_notes_stripe_uq` ON `credit_notes` (`stripe_credit_note_index`);