DROP INDEX `audit_log_chain_seq_uq`;--> statement-breakpoint
ALTER TABLE `audit_log` ADD `segment` text DEFAULT 'legacy' NOT NULL;--> statement-breakpoint
ALTER TABLE `audit_log` ADD `key_id` text;--> statement-breakpoint
CREATE UNIQUE INDEX `audit_log_chain_segment_seq_uq` ON `audit_log` (`chain`,`segment`,`seq`);