import { z } from "@hono/zod-openapi";

/**
 * Ingress hygiene (docs/security.md, "Input"): the one schema helper for every text field of the
 * API. A value is Unicode-normalized (NFC) and trimmed, then refused (400 VALIDATION_FAILED, the
 * message naming the rule, never echoing the value) when it holds
 * - a control character (C0, DEL, C1 — NUL among them; tab and line breaks only where `multiline`),
 * - a bidirectional control (LRE/RLE/PDF/LRO/RLO, the isolates, LRM/RLM/ALM),
 * - any other invisible format character (zero-width space, word joiner, BOM, soft hyphen, tag
 *   characters…) except the zero-width (non-)joiner that some scripts and emoji need between
 *   visible characters,
 * - a lone surrogate (not well-formed Unicode),
 * - nothing visible at all (only spaces, joiners or invisible fillers),
 * or when it is shorter than `min` or longer than `max` characters once normalized.
 */
const CONTROL = /[\p{Cc}]/u;
const CONTROL_MULTILINE = /[^\P{Cc}\t\n\r]/u;
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
const FORMAT = /[^\P{Cf}\u200C\u200D\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
const SURROGATE = /\p{Cs}/u;
/** What renders as nothing: separators, format characters, default-ignorable fillers and marks. */
const INVISIBLE = /[\p{Z}\p{Cf}\p{Cc}\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u2800\u3164\uFFA0\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;

export type TextOptions = { min?: number; max: number; multiline?: boolean };

export function text({ min = 1, max, multiline = false }: TextOptions) {
  return z
    .string()
    .normalize("NFC")
    .trim()
    .min(min)
    .max(max)
    .refine((v) => !SURROGATE.test(v), "must be well-formed Unicode (no lone surrogates)")
    .refine((v) => !(multiline ? CONTROL_MULTILINE : CONTROL).test(v), multiline ? "must not contain control characters other than tabs and line breaks" : "must not contain control characters")
    .refine((v) => !BIDI.test(v), "must not contain bidirectional control characters")
    .refine((v) => !FORMAT.test(v), "must not contain invisible formatting characters")
    .refine((v) => v.length === 0 || v.replace(INVISIBLE, "").length > 0, "must contain visible characters");
}
