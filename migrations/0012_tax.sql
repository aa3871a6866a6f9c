ALTER TABLE `offices` ADD `tax_mode` text;--> statement-breakpoint
ALTER TABLE `offices` ADD `tax_rate_bps` integer;--> statement-breakpoint
ALTER TABLE `offices` ADD `tax_rate_name` text;--> statement-breakpoint
ALTER TABLE `offices` ADD `stripe_tax_rate_id` text;--> statement-breakpoint
ALTER TABLE `offices` ADD `stripe_tax_rate_key` text;--> statement-breakpoint
ALTER TABLE `invoices` ADD `tax_mode` text;--> statement-breakpoint
ALTER TABLE `invoices` ADD `tax_rate_bps` integer;--> statement-breakpoint
ALTER TABLE `invoices` ADD `tax_rate_name` text;--> statement-breakpoint
ALTER TABLE `invoices` ADD `tax_amount` integer;--> statement-breakpoint
ALTER TABLE `invoices` ADD `total_including_tax` integer;--> statement-breakpoint
ALTER TABLE `invoices` ADD `stripe_held_profile` integer;