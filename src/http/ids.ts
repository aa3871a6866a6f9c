import { z } from "@hono/zod-openapi";

/** Path and query ids are validated before anything looks them up. */
export const OfficeIdSchema = z
  .string()
  .regex(/^off_[0-9a-f]{32}$/, "must be an office id (off_ followed by 32 hex digits)")
  .openapi({ example: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" });

/** A client's Idempotency-Key: a retry with the same key replays the first answer. */
export const IdempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, "must be 1 to 255 visible ASCII characters")
  .openapi({ description: "Unique per operation; a retry with the same key replays the first answer.", example: "evt-7f3a9c" });
