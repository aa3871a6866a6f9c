CREATE TABLE `plan_versions` (
	`id` text PRIMARY KEY NOT NULL,
	`plan_id` text NOT NULL,
	`version` integer NOT NULL,
	`currency` text NOT NULL,
	`base_fee` integer DEFAULT 0 NOT NULL,
	`tiers` text NOT NULL,
	`included_patients` integer DEFAULT 0 NOT NULL,
	`setup_fee` integer DEFAULT 0 NOT NULL,
	`trial_days` integer DEFAULT 0 NOT NULL,
	`grace_days` integer DEFAULT 14 NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	FOREIGN KEY (`plan_id`) REFERENCES `plans`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "plan_versions_amounts_ck" CHECK("plan_versions"."base_fee" >= 0 AND "plan_versions"."setup_fee" >= 0 AND "plan_versions"."included_patients" >= 0 AND "plan_versions"."trial_days" >= 0 AND "plan_versions"."grace_days" >= 0),
	CONSTRAINT "plan_versions_currency_ck" CHECK(length("plan_versions"."currency") = 3 AND "plan_versions"."currency" = lower("plan_versions"."currency"))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `plan_versions_plan_version_uq` ON `plan_versions` (`plan_id`,`version`);--> statement-breakpoint
CREATE TABLE `plans` (
	`id` text PRIMARY KEY NOT NULL,
	`code` text NOT NULL,
	`name` text NOT NULL,
	`status` text DEFAULT 'active' NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	CONSTRAINT "plans_status_ck" CHECK("plans"."status" IN ('active','retired'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `plans_code_uq` ON `plans` (`code`);--> statement-breakpoint
CREATE TABLE `offices` (
	`id` text PRIMARY KEY NOT NULL,
	`legal_name` text NOT NULL,
	`billing_email` text NOT NULL,
	`time_zone` text NOT NULL,
	`billing_anchor_day` integer NOT NULL,
	`plan_version_id` text NOT NULL,
	`pending_plan_version_id` text,
	`status` text NOT NULL,
	`trial_ends_at` integer,
	`cancel_at_period_end` integer DEFAULT false NOT NULL,
	`canceled_at` integer,
	`past_due_since` integer,
	`billing_start` text DEFAULT '1970-01-01' NOT NULL,
	`cycle_start` text NOT NULL,
	`cycle_end` text NOT NULL,
	`cycle_end_at` integer DEFAULT 0 NOT NULL,
	`stripe_customer_ref` text,
	`stripe_customer_index` text,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`plan_version_id`) REFERENCES `plan_versions`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`pending_plan_version_id`) REFERENCES `plan_versions`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "offices_anchor_ck" CHECK("offices"."billing_anchor_day" BETWEEN 1 AND 31),
	CONSTRAINT "offices_status_ck" CHECK("offices"."status" IN ('trialing','active','past_due','suspended','canceled')),
	CONSTRAINT "offices_cycle_ck" CHECK("offices"."cycle_start" < "offices"."cycle_end")
);
--> statement-breakpoint
CREATE UNIQUE INDEX `offices_stripe_customer_uq` ON `offices` (`stripe_customer_index`);--> statement-breakpoint
CREATE INDEX `offices_due_ix` ON `offices` (`cycle_end_at`);--> statement-breakpoint
CREATE TABLE `patient_events` (
	`id` text PRIMARY KEY NOT NULL,
	`office_id` text NOT NULL,
	`patient_key` text NOT NULL,
	`kind` text NOT NULL,
	`event_at` integer NOT NULL,
	`received_at` integer NOT NULL,
	`idempotency_key` text NOT NULL,
	`request_hash` text NOT NULL,
	`applied` integer DEFAULT false NOT NULL,
	`active_after` integer DEFAULT false NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	FOREIGN KEY (`office_id`) REFERENCES `offices`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "patient_events_kind_ck" CHECK("patient_events"."kind" IN ('activate','deactivate'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `patient_events_idempotency_uq` ON `patient_events` (`office_id`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `patient_events_patient_ix` ON `patient_events` (`office_id`,`patient_key`,`event_at`);--> statement-breakpoint
CREATE TABLE `patients` (
	`office_id` text NOT NULL,
	`patient_key` text NOT NULL,
	`active` integer NOT NULL,
	`changed_at` integer NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	PRIMARY KEY(`office_id`, `patient_key`),
	FOREIGN KEY (`office_id`) REFERENCES `offices`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "patients_key_ck" CHECK(length("patients"."patient_key") = 64)
);
--> statement-breakpoint
CREATE INDEX `patients_office_active_ix` ON `patients` (`office_id`,`active`);--> statement-breakpoint
CREATE TABLE `invoice_line_patients` (
	`invoice_line_id` text NOT NULL,
	`office_id` text NOT NULL,
	`patient_key` text NOT NULL,
	`counted_at` integer NOT NULL,
	PRIMARY KEY(`invoice_line_id`, `patient_key`),
	FOREIGN KEY (`invoice_line_id`) REFERENCES `invoice_lines`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `invoice_line_patients_patient_ix` ON `invoice_line_patients` (`office_id`,`patient_key`);--> statement-breakpoint
CREATE TABLE `invoice_lines` (
	`id` text PRIMARY KEY NOT NULL,
	`invoice_id` text NOT NULL,
	`kind` text NOT NULL,
	`description` text NOT NULL,
	`category` text,
	`internal_note` text,
	`quantity` integer NOT NULL,
	`amount` integer NOT NULL,
	`period_start` text,
	`period_end` text,
	`position` integer DEFAULT 0 NOT NULL,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	FOREIGN KEY (`invoice_id`) REFERENCES `invoices`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "invoice_lines_quantity_ck" CHECK("invoice_lines"."quantity" >= 0)
);
--> statement-breakpoint
CREATE INDEX `invoice_lines_invoice_ix` ON `invoice_lines` (`invoice_id`,`position`);--> statement-breakpoint
CREATE TABLE `invoices` (
	`id` text PRIMARY KEY NOT NULL,
	`office_id` text NOT NULL,
	`kind` text NOT NULL,
	`status` text DEFAULT 'draft' NOT NULL,
	`currency` text NOT NULL,
	`period_start` text NOT NULL,
	`period_end` text NOT NULL,
	`period_start_at` integer DEFAULT 0 NOT NULL,
	`period_end_at` integer DEFAULT 0 NOT NULL,
	`in_trial` integer DEFAULT false NOT NULL,
	`plan_version_id` text,
	`subtotal` integer DEFAULT 0 NOT NULL,
	`total` integer DEFAULT 0 NOT NULL,
	`amount_paid` integer DEFAULT 0 NOT NULL,
	`amount_refunded` integer DEFAULT 0 NOT NULL,
	`stripe_invoice_ref` text,
	`stripe_invoice_index` text,
	`stripe_state` text DEFAULT 'none' NOT NULL,
	`finalized_at` integer,
	`paid_at` integer,
	`voided_at` integer,
	`due_at` integer,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`office_id`) REFERENCES `offices`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "invoices_kind_ck" CHECK("invoices"."kind" IN ('monthly','setup','one_off')),
	CONSTRAINT "invoices_status_ck" CHECK("invoices"."status" IN ('draft','open','paid','void','uncollectible')),
	CONSTRAINT "invoices_amounts_ck" CHECK("invoices"."amount_paid" >= 0 AND "invoices"."amount_refunded" >= 0 AND "invoices"."amount_refunded" <= "invoices"."amount_paid"),
	CONSTRAINT "invoices_period_ck" CHECK("invoices"."period_start" <= "invoices"."period_end")
);
--> statement-breakpoint
CREATE UNIQUE INDEX `invoices_office_kind_period_uq` ON `invoices` (`office_id`,`kind`,`period_start`) WHERE "invoices"."kind" IN ('monthly','setup');--> statement-breakpoint
CREATE UNIQUE INDEX `invoices_one_draft_uq` ON `invoices` (`office_id`) WHERE "invoices"."kind" = 'monthly' AND "invoices"."status" = 'draft';--> statement-breakpoint
CREATE UNIQUE INDEX `invoices_stripe_invoice_uq` ON `invoices` (`stripe_invoice_index`);--> statement-breakpoint
CREATE INDEX `invoices_office_created_ix` ON `invoices` (`office_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `invoices_status_ix` ON `invoices` (`status`);--> statement-breakpoint
CREATE TABLE `audit_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`chain` text NOT NULL,
	`seq` integer NOT NULL,
	`at` integer NOT NULL,
	`actor_sub` text NOT NULL,
	`actor_role` text NOT NULL,
	`action` text NOT NULL,
	`office_id` text,
	`target_ids` text NOT NULL,
	`outcome` text NOT NULL,
	`request_id` text,
	`details` text,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
	CONSTRAINT "audit_log_seq_ck" CHECK("audit_log"."seq" >= 1)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `audit_log_chain_seq_uq` ON `audit_log` (`chain`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_log_office_at_ix` ON `audit_log` (`office_id`,`at`);--> statement-breakpoint
CREATE INDEX `audit_log_at_ix` ON `audit_log` (`at`);--> statement-breakpoint
CREATE TABLE `stripe_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`office_id` text,
	`operation` text NOT NULL,
	`method` text NOT NULL,
	`path` text NOT NULL,
	`idempotency_key` text,
	`body_sha256` text NOT NULL,
	`status` text NOT NULL,
	`http_status` integer,
	`stripe_ids` text,
	`error_code` text,
	`request_id` text,
	`finished_at` integer,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `stripe_requests_office_ix` ON `stripe_requests` (`office_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `stripe_requests_idempotency_ix` ON `stripe_requests` (`idempotency_key`);--> statement-breakpoint
CREATE TABLE `webhook_events` (
	`id` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`office_id` text,
	`stripe_object_id` text,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`stripe_created_at` integer NOT NULL,
	`payload` text NOT NULL,
	`error` text,
	`received_at` integer NOT NULL,
	`processed_at` integer
);
--> statement-breakpoint
CREATE INDEX `webhook_events_office_ix` ON `webhook_events` (`office_id`,`received_at`);--> statement-breakpoint
CREATE INDEX `webhook_events_status_ix` ON `webhook_events` (`status`,`type`);--> statement-breakpoint
CREATE TABLE `job_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`job` text NOT NULL,
	`run_key` text NOT NULL,
	`cron` text,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 1 NOT NULL,
	`summary` text,
	`started_at` integer NOT NULL,
	`finished_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `job_runs_job_key_uq` ON `job_runs` (`job`,`run_key`);