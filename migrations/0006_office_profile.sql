ALTER TABLE `offices` ADD `billing_address` text;--> statement-breakpoint
ALTER TABLE `offices` ADD `tax_id` text;--> statement-breakpoint
ALTER TABLE `offices` ADD `pending_time_zone` text;--> statement-breakpoint
ALTER TABLE `offices` ADD `pending_anchor_day` integer;--> statement-breakpoint
ALTER TABLE `offices` ADD `profile_version` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `offices` ADD `stripe_profile_version` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
CREATE INDEX `offices_created_ix` ON `offices` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `offices_legal_name_ix` ON `offices` ("legal_name" COLLATE NOCASE,`id`);