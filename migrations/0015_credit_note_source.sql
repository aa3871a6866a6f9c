PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_credit_notes` (
	`id` text PRIMARY KEY NOT NULL,
	`office_id` text NOT NULL,
	`invoice_id` text NOT NULL,
	`amount` integer NOT NULL,
	`lines` text,
	`reason` text,
	`memo` text,
	`settlement` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`source` text DEFAULT 'api' NOT NULL,
	`stripe_credit_note_ref` text,
	`stripe_credit_note_index` text,
	`error_code` text,
	`requested_by` text NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`invoice_id`) REFERENCES `invoices`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "credit_notes_amount_ck" CHECK("__new_credit_notes"."amount" > 0),
	CONSTRAINT "credit_notes_status_ck" CHECK("__new_credit_notes"."status" IN ('pending','issued','void','failed')),
	CONSTRAINT "credit_notes_settlement_ck" CHECK("__new_credit_notes"."settlement" IN ('none','refund','customer_balance')),
	CONSTRAINT "credit_notes_source_ck" CHECK("__new_credit_notes"."source" IN ('api','stripe') AND ("__new_credit_notes"."source" = 'stripe' OR ("__new_credit_notes"."reason" IS NOT NULL AND "__new_credit_notes"."memo" IS NOT NULL)))
);
--> statement-breakpoint
INSERT INTO `__new_credit_notes`("id", "office_id", "invoice_id", "amount", "lines", "reason", "memo", "settlement", "status", "stripe_credit_note_ref", "stripe_credit_note_index", "error_code", "requested_by", "created_at", "updated_at") SELECT "id", "office_id", "invoice_id", "amount", "lines", "reason", "memo", "settlement", "status", "stripe_credit_note_ref", "stripe_credit_note_index", "error_code", "requested_by", "created_at", "updated_at" FROM `credit_notes`;--> statement-breakpoint
DROP TABLE `credit_notes`;--> statement-breakpoint
ALTER TABLE `__new_credit_notes` RENAME TO `credit_notes`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `credit_notes_invoice_ix` ON `credit_notes` (`invoice_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `credit_notes_pending_ix` ON `credit_notes` (`status`,`office_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `credit_notes_stripe_uq` ON `credit_notes` (`stripe_credit_note_index`);