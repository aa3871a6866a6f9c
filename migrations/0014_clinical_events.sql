CREATE TABLE `clinical_events` (
	`id` text PRIMARY KEY NOT NULL,
	`office_id` text NOT NULL,
	`seq` integer NOT NULL,
	`type` text NOT NULL,
	`data` text NOT NULL,
	`occurred_at` integer NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`queued_at` integer,
	`first_attempt_at` integer,
	`last_attempt_at` integer,
	`next_attempt_at` integer,
	`last_status` integer,
	`last_error` text,
	`delivered_at` integer,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	CONSTRAINT "clinical_events_status_ck" CHECK("clinical_events"."status" IN ('pending','delivered','failed'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `clinical_events_office_seq_uq` ON `clinical_events` (`office_id`,`seq`);--> statement-breakpoint
CREATE INDEX `clinical_events_status_ix` ON `clinical_events` (`status`,`queued_at`);--> statement-breakpoint
CREATE INDEX `clinical_events_office_waiting_ix` ON `clinical_events` (`office_id`) WHERE "clinical_events"."status" = 'pending' AND "clinical_events"."queued_at" IS NULL;
--> statement-breakpoint
-- Events for the clinical application (docs/clinical-events.md), written in the same transaction as
-- the change they report. Ids, statuses, periods and counts only: never a patient. Each INSERT is its
-- own statement so the office's sequence (MAX + 1) sees the one before it.
CREATE TRIGGER `clinical_office_status` AFTER UPDATE OF `status` ON `offices`
WHEN NEW.`status` IS NOT OLD.`status`
BEGIN
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`id`), 0) + 1, 'office.status_changed',
    json_object('officeId', NEW.`id`, 'from', OLD.`status`, 'to', NEW.`status`),
    NEW.`updated_at`;
END;
--> statement-breakpoint
CREATE TRIGGER `clinical_invoice_status` AFTER UPDATE OF `status` ON `invoices`
WHEN NEW.`status` IS NOT OLD.`status`
BEGIN
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`office_id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`office_id`), 0) + 1, 'cycle.closed',
    json_object('officeId', NEW.`office_id`, 'invoiceId', NEW.`id`, 'invoiceKind', NEW.`kind`, 'status', NEW.`status`, 'periodStart', NEW.`period_start`, 'periodEnd', NEW.`period_end`, 'billablePatients', NEW.`billable_patients`),
    NEW.`updated_at`
  WHERE OLD.`status` = 'draft' AND NEW.`kind` = 'monthly';
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`office_id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`office_id`), 0) + 1, 'invoice.finalized',
    json_object('officeId', NEW.`office_id`, 'invoiceId', NEW.`id`, 'invoiceKind', NEW.`kind`, 'status', NEW.`status`, 'periodStart', NEW.`period_start`, 'periodEnd', NEW.`period_end`),
    NEW.`updated_at`
  WHERE OLD.`status` = 'draft';
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`office_id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`office_id`), 0) + 1, 'invoice.paid',
    json_object('officeId', NEW.`office_id`, 'invoiceId', NEW.`id`, 'invoiceKind', NEW.`kind`, 'status', NEW.`status`, 'periodStart', NEW.`period_start`, 'periodEnd', NEW.`period_end`),
    NEW.`updated_at`
  WHERE NEW.`status` = 'paid';
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`office_id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`office_id`), 0) + 1, 'invoice.voided',
    json_object('officeId', NEW.`office_id`, 'invoiceId', NEW.`id`, 'invoiceKind', NEW.`kind`, 'status', NEW.`status`, 'periodStart', NEW.`period_start`, 'periodEnd', NEW.`period_end`),
    NEW.`updated_at`
  WHERE NEW.`status` = 'void';
END;
--> statement-breakpoint
CREATE TRIGGER `clinical_invoice_created` AFTER INSERT ON `invoices`
WHEN NEW.`status` <> 'draft'
BEGIN
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`office_id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`office_id`), 0) + 1, 'invoice.finalized',
    json_object('officeId', NEW.`office_id`, 'invoiceId', NEW.`id`, 'invoiceKind', NEW.`kind`, 'status', NEW.`status`, 'periodStart', NEW.`period_start`, 'periodEnd', NEW.`period_end`),
    NEW.`updated_at`;
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`office_id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`office_id`), 0) + 1, 'invoice.paid',
    json_object('officeId', NEW.`office_id`, 'invoiceId', NEW.`id`, 'invoiceKind', NEW.`kind`, 'status', NEW.`status`, 'periodStart', NEW.`period_start`, 'periodEnd', NEW.`period_end`),
    NEW.`updated_at`
  WHERE NEW.`status` = 'paid';
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`office_id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`office_id`), 0) + 1, 'invoice.voided',
    json_object('officeId', NEW.`office_id`, 'invoiceId', NEW.`id`, 'invoiceKind', NEW.`kind`, 'status', NEW.`status`, 'periodStart', NEW.`period_start`, 'periodEnd', NEW.`period_end`),
    NEW.`updated_at`
  WHERE NEW.`status` = 'void';
END;
--> statement-breakpoint
CREATE TRIGGER `clinical_invoice_payment_failed` AFTER UPDATE OF `payment_failed_at` ON `invoices`
WHEN NEW.`payment_failed_at` IS NOT NULL AND NEW.`payment_failed_at` IS NOT OLD.`payment_failed_at`
BEGIN
  INSERT INTO `clinical_events` (`id`, `office_id`, `seq`, `type`, `data`, `occurred_at`)
  SELECT 'cev_' || lower(hex(randomblob(16))), NEW.`office_id`, COALESCE((SELECT MAX(`seq`) FROM `clinical_events` WHERE `office_id` = NEW.`office_id`), 0) + 1, 'invoice.payment_failed',
    json_object('officeId', NEW.`office_id`, 'invoiceId', NEW.`id`, 'invoiceKind', NEW.`kind`, 'status', NEW.`status`, 'periodStart', NEW.`period_start`, 'periodEnd', NEW.`period_end`),
    NEW.`updated_at`;
END;
