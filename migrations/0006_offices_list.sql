CREATE INDEX `offices_created_ix` ON `offices` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `offices_legal_name_ix` ON `offices` ("legal_name" COLLATE NOCASE,`id`);