CREATE TABLE `coupons` (
	`id` text PRIMARY KEY NOT NULL,
	`code` text NOT NULL,
	`percent_off` integer,
	`amount_off` integer,
	`currency` text,
	`duration` text NOT NULL,
	`duration_cycles` integer,
	`redeem_by` integer,
	`max_redemptions` integer,
	`times_redeemed` integer DEFAULT 0 NOT NULL,
	`archived_at` integer,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	CONSTRAINT "coupons_value_ck" CHECK(("coupons"."percent_off" BETWEEN 1 AND 100 AND "coupons"."amount_off" IS NULL AND "coupons"."currency" IS NULL) OR ("coupons"."percent_off" IS NULL AND "coupons"."amount_off" > 0 AND "coupons"."currency" IS NOT NULL)),
	CONSTRAINT "coupons_duration_ck" CHECK(("coupons"."duration" = 'repeating' AND "coupons"."duration_cycles" BETWEEN 1 AND 36) OR ("coupons"."duration" != 'repeating' AND "coupons"."duration_cycles" IS NULL)),
	CONSTRAINT "coupons_redemptions_ck" CHECK("coupons"."max_redemptions" IS NULL OR "coupons"."times_redeemed" <= "coupons"."max_redemptions")
);
--> statement-breakpoint
CREATE UNIQUE INDEX `coupons_code_uq` ON `coupons` (`code`);--> statement-breakpoint
CREATE TABLE `office_discounts` (
	`id` text PRIMARY KEY NOT NULL,
	`office_id` text NOT NULL,
	`coupon_id` text NOT NULL,
	`applied_by` text NOT NULL,
	`invoices_used` integer DEFAULT 0 NOT NULL,
	`ended_at` integer,
	`end_reason` text,
	`created_at` integer DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)) NOT NULL,
	FOREIGN KEY (`office_id`) REFERENCES `offices`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`coupon_id`) REFERENCES `coupons`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `office_discounts_open_uq` ON `office_discounts` (`office_id`) WHERE "office_discounts"."ended_at" IS NULL;--> statement-breakpoint
CREATE INDEX `office_discounts_office_ix` ON `office_discounts` (`office_id`,`created_at`);