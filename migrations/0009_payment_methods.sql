ALTER TABLE `offices` ADD `payment_method_status` text DEFAULT 'none' NOT NULL;--> statement-breakpoint
ALTER TABLE `offices` ADD `payment_method_brand` text;--> statement-breakpoint
ALTER TABLE `offices` ADD `payment_method_last4` text;--> statement-breakpoint
ALTER TABLE `offices` ADD `payment_method_exp_month` integer;--> statement-breakpoint
ALTER TABLE `offices` ADD `payment_method_exp_year` integer;--> statement-breakpoint
ALTER TABLE `invoices` ADD `collection_method` text;