ALTER TABLE `invoices` ADD `stripe_number` text;--> statement-breakpoint
ALTER TABLE `invoices` ADD `stripe_documents_ref` text;