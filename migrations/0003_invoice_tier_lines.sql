CREATE TABLE `invoice_patients` (
	`invoice_id` text NOT NULL,
	`office_id` text NOT NULL,
	`patient_key` text NOT NULL,
	`counted_at` integer NOT NULL,
	PRIMARY KEY(`invoice_id`, `patient_key`),
	FOREIGN KEY (`invoice_id`) REFERENCES `invoices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `invoice_patients_patient_ix` ON `invoice_patients` (`office_id`,`patient_key`);--> statement-breakpoint
INSERT INTO `invoice_patients` (`invoice_id`, `office_id`, `patient_key`, `counted_at`)
  SELECT l.`invoice_id`, m.`office_id`, m.`patient_key`, MIN(m.`counted_at`) FROM `invoice_line_patients` m JOIN `invoice_lines` l ON l.`id` = m.`invoice_line_id`
  GROUP BY l.`invoice_id`, m.`patient_key`;--> statement-breakpoint
DROP TABLE `invoice_line_patients`;--> statement-breakpoint
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_invoice_lines` (
	`id` text PRIMARY KEY NOT NULL,
	`invoice_id` text NOT NULL,
	`kind` text NOT NULL,
	`description` text NOT NULL,
	`category` text,
	`internal_note` text,
	`quantity` integer NOT NULL,
	`unit_amount` integer,
	`rank_from` integer,
	`rank_to` integer,
	`amount` integer NOT NULL,
	`period_start` text,
	`period_end` text,
	`position` integer DEFAULT 0 NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	FOREIGN KEY (`invoice_id`) REFERENCES `invoices`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "invoice_lines_quantity_ck" CHECK("__new_invoice_lines"."quantity" >= 0),
	CONSTRAINT "invoice_lines_unit_ck" CHECK("__new_invoice_lines"."unit_amount" IS NULL OR ("__new_invoice_lines"."unit_amount" >= 0 AND "__new_invoice_lines"."amount" = "__new_invoice_lines"."quantity" * "__new_invoice_lines"."unit_amount"))
);
--> statement-breakpoint
INSERT INTO `__new_invoice_lines`("id", "invoice_id", "kind", "description", "category", "internal_note", "quantity", "unit_amount", "rank_from", "rank_to", "amount", "period_start", "period_end", "position", "created_at") SELECT "id", "invoice_id", "kind", "description", "category", "internal_note", "quantity", NULL, NULL, NULL, "amount", "period_start", "period_end", "position", "created_at" FROM `invoice_lines`;--> statement-breakpoint
DROP TABLE `invoice_lines`;--> statement-breakpoint
ALTER TABLE `__new_invoice_lines` RENAME TO `invoice_lines`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `invoice_lines_invoice_ix` ON `invoice_lines` (`invoice_id`,`position`);--> statement-breakpoint
ALTER TABLE `invoices` ADD `billable_patients` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `invoices` ADD `included_patients` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
UPDATE `invoices` SET `billable_patients` = COALESCE((SELECT count(*) FROM `invoice_patients` p WHERE p.`invoice_id` = `invoices`.`id`), 0),
  `included_patients` = COALESCE((SELECT v.`included_patients` FROM `plan_versions` v WHERE v.`id` = `invoices`.`plan_version_id`), 0)
  WHERE `kind` = 'monthly';
