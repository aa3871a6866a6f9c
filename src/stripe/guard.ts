/**
 * The PHI egress guard: the last check before a request leaves for Stripe. It scans the serialized
 * request — path, query, every form field, the headers we set — and blocks it (fails closed) on any
 * identifier of the kinds below, or on anything shaped like a patient key. What a scan cannot
 * detect (a person's name typed as an office name) and the control for it:
 * docs/compliance/stripe-without-baa.md.
 * Every value is normalized before it is matched (`readings`: NFKC, invisible characters removed,
 * percent and base64 tokens decoded, separators between digit groups collapsed), so an identifier
 * written in full-width digits, with zero-width characters, spaced, with en dashes or slashes, or
 * encoded, is the identifier. Numeric fields are bounded by their own rules (`-?\d{1,15}`), not
 * scanned as text. Defence in depth: payloads are already built from allowlist schemas (payloads.ts).
 */

import { tierLineDescription } from "./payloads";

export type GuardContext = {
  /** The office's own billing e-mail: the one e-mail address that may leave. */
  billingEmail: string;
  /** Billing period dates (`YYYY-MM-DD`) that may appear. */
  periodDates: string[];
  /** The office's own postal code(s), if it has any on record. */
  officeZips?: string[];
  /**
   * The office's own recorded address by form key (`address[line1]` → value): in those fields, that
   * exact value may read as a street address and a ZIP code; every other kind is still found.
   */
  officeAddress?: Record<string, string>;
  /** Exact values allowed in specific fields (e.g. the portal's return URL). */
  allowedValues?: Record<string, string>;
  /** The office's patient keys (pseudonyms): none may leave. */
  patientKeys?: Iterable<string>;
};

export type OutboundRequest = {
  method: string;
  path: string;
  query?: string;
  /** The form-encoded body as it will be sent. */
  body: string;
  /** Headers we set (never the Authorization value). */
  headers: Record<string, string>;
};

export type Finding = { kind: IdentifierKind; field: string };

export const identifierKinds = [
  "ssn",
  "phone",
  "email",
  "date",
  "record_number",
  "url",
  "ip_address",
  "serial_number",
  "street_address",
  "zip_code",
  "patient_key",
  "unknown_field",
] as const;
export type IdentifierKind = (typeof identifierKinds)[number];

const MONTHS = "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";

/** A record-number-like token (see its detector below): no nested quantifiers, so backtracking is at worst quadratic in a token's length (the values scanned are at most a few hundred characters). */
export const RECORD_TOKEN = /\b(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9]{2}(?:-?[a-z0-9])*\d{4}[a-z0-9-]*\b/i;

/** Detectors over text values. Each is deliberately broad: a false block is a visible error, a miss is a breach. */
const detectors: { kind: IdentifierKind; re: RegExp }[] = [
  { kind: "ssn", re: /\b\d{3}[-\s.]\d{2}[-\s.]\d{4}\b/ },
  { kind: "ssn", re: /\b(?:ssn|social\s*security)\b/i },
  { kind: "phone", re: /(?:\+?\d{1,3}[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b/ },
  { kind: "phone", re: /\+\d[\d\s().-]{7,}\d/ },
  { kind: "phone", re: /\b(?:tel|phone|fax|mobile|cell)\b/i },
  { kind: "url", re: /\b(?:https?|ftp):\/\/|\bwww\.[a-z0-9-]+\./i },
  { kind: "ip_address", re: /\b(?:\d{1,3}\.){3}\d{1,3}\b/ },
  { kind: "ip_address", re: /\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{0,4}\b/i },
  { kind: "date", re: /\b\d{4}-\d{2}-\d{2}\b/ },
  { kind: "date", re: /\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b/ },
  { kind: "date", re: new RegExp(`\\b${MONTHS}\\.?\\s+\\d{1,2}(?:st|nd|rd|th)?,?\\s+\\d{4}\\b`, "i") },
  { kind: "date", re: new RegExp(`\\b\\d{1,2}(?:st|nd|rd|th)?\\s+${MONTHS}\\.?,?\\s+\\d{4}\\b`, "i") },
  { kind: "date", re: /\b(?:dob|born|birth\s*date|date\s*of\s*birth|admitted|discharged|deceased|died)\b/i },
  { kind: "record_number", re: /\b(?:mrn|medical\s*record|chart|patient\s*(?:id|no|number|#)|member\s*(?:id|no|#)|policy|health\s*plan|beneficiary|subscriber|account\s*(?:no|number|#)|acct|certificate|licen[cs]e|npi|dea)\b/i },
  // A token of letters and digits (hyphens between them) with a run of 4+ digits. Written without
  // nested quantifiers: `[a-z0-9]{2,}(?:-?[a-z0-9]+)*\d{4,}` is the same language, but backtracked
  // exponentially on a long token with no such run (31 characters took 9 s; RECORD_TOKEN_NESTED in
  // the tests checks that both agree).
  { kind: "record_number", re: RECORD_TOKEN },
  { kind: "record_number", re: /\b\d{7,}\b/ },
  { kind: "serial_number", re: /\b(?:serial|s\/n|imei|vin|device\s*id|udi)\b/i },
  { kind: "serial_number", re: /\b[A-HJ-NPR-Z0-9]{17}\b/ },
  { kind: "street_address", re: /\b\d{1,6}\s+(?:[a-z0-9.'-]+\s+){0,4}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|circle|cir|highway|hwy|parkway|pkwy|suite|ste|apt|apartment|unit)\b\.?/i },
  { kind: "street_address", re: /\b(?:p\.?\s*o\.?\s*box)\b/i },
  { kind: "zip_code", re: /\b\d{5}(?:-\d{4})?\b/ },
  { kind: "patient_key", re: /\b[0-9a-f]{64}\b/i },
];

const EMAIL_RE = /[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}/gi;

/**
 * Detectors of the digits-collapsed reading, where every run of digits joined by separators is
 * one number, classified by its length: 9 digits an SSN's shape, 10–11 a phone number's, 5 a
 * ZIP's, any other run of 7 or more a record number.
 */
const collapsedDetectors: { kind: IdentifierKind; re: RegExp }[] = [
  { kind: "ssn", re: /\b\d{9}\b/ },
  { kind: "phone", re: /\b1?\d{10}\b/ },
  { kind: "zip_code", re: /\b\d{5}\b/ },
  { kind: "record_number", re: /\b(?:\d{7,8}|\d{12,})\b/ },
];

/**
 * Characters that render as nothing, removed before matching: every format character (\p{Cf}:
 * zero-width space/joiners, word joiner, BOM, soft hyphen, bidi controls, tag characters) and the
 * invisible letters and marks that are not Cf (combining grapheme joiner, Hangul fillers,
 * Mongolian vowel separator, variation selectors).
 */
const INVISIBLE = /[\p{Cf}\u034F\u115F\u1160\u17B4\u17B5\u180B-\u180F\u3164\uFFA0\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;

/** Percent-encoded octets, decoded as UTF-8 (or, when they are not UTF-8, each octet as Latin-1). */
function percentDecode(text: string): string {
  return text.replace(/(?:%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    }
  });
}

/** One strict UTF-8 decoder for every token (no stream state: each `decode` call stands alone). */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** A token that may be base64 (standard or URL alphabet) of printable text: its decoding, else null. */
function base64Text(token: string): string | null {
  const t = token.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  if (t.length < 6 || t.length % 4 === 1) return null;
  let bytes: string;
  try {
    bytes = atob(t + "=".repeat((4 - (t.length % 4)) % 4));
  } catch {
    return null;
  }
  let decoded = bytes;
  try {
    const octets = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) octets[i] = bytes.charCodeAt(i);
    decoded = UTF8.decode(octets);
  } catch {
    return null;
  }
  // Printable text only (random bytes, like the hex of our own ids, are not).
  return /^[\p{L}\p{N}\p{P}\p{S}\p{Zs}]+$/u.test(decoded) ? decoded : null;
}

/**
 * The canonical reading of a value, before any detector runs: NFKC (full-width and other
 * compatibility digits and letters become ASCII ones), invisible characters removed, every dash
 * (en dash, em dash, minus sign…) read as `-`, every space as a space, percent-encoding decoded
 * (repeatedly, for double encoding).
 */
export function canonicalText(text: string): string {
  let out = text;
  for (let i = 0; i < 3; i++) {
    const next = percentDecode(out.normalize("NFKC").replace(INVISIBLE, ""))
      .replace(/[\p{Pd}\u2212\uFE63\uFF0D]/gu, "-")
      .replace(/[\p{Zs}\t\r\n\v\f]/gu, " ");
    if (next === out) break;
    out = next;
  }
  return out;
}

/** Digit groups with any separators between them (spaces, dashes, slashes, dots, …) read as one run of digits. */
export function collapseDigitGroups(text: string): string {
  return text.replace(/(?<=\d)[^\p{L}\p{N}]{1,3}(?=\d)/gu, "");
}

/**
 * The readings of a value the detectors see: the canonical text, the value as it stands (when it
 * differs) and the decoding of every token of the canonical text that is base64 of printable
 * text (itself read the same way, one level deep).
 */
export function readings(text: string, depth = 0): string[] {
  const canonical = canonicalText(text);
  // The value as it stands too: decoding can hide what it holds (`%aa` before a patient key's
  // digits decodes them away, though the key leaves as it is).
  const out = text === canonical ? [canonical] : [canonical, text];
  if (depth < 2) {
    for (const token of canonical.match(/[A-Za-z0-9+/_-]{6,}={0,2}/g) ?? []) {
      const decoded = base64Text(token);
      if (decoded !== null) out.push(...readings(decoded, depth + 1));
    }
  }
  return out;
}

/** A run of 64 hex digits: the shape of a patient key. */
const HEX_RUN = /[0-9a-f]{64}/;

/**
 * Scans one text value. The value is read canonically first (readings above); then what the
 * context allows is taken out — the billing period's dates, the office's ZIPs, and the office's
 * billing e-mail *as an address* (its local part and domain are still scanned like any text:
 * `123-45-6789@clinic.example` is an SSN); then every detector runs on what is left, and again
 * the number detectors on it with the separators between digit groups collapsed.
 */
export function scanText(text: string, field: string, ctx: GuardContext): Finding[] {
  if (ctx.allowedValues?.[field] === text) return [];
  const kinds = new Set<IdentifierKind>();
  const billingEmail = canonicalText(ctx.billingEmail).toLowerCase();
  let keys: string[] | null = null;
  for (const reading of readings(text)) {
    let rest = reading;
    for (const email of reading.match(EMAIL_RE) ?? []) {
      if (billingEmail !== "" && email.toLowerCase() === billingEmail) {
        const at = email.lastIndexOf("@");
        rest = rest.split(email).join(` ${email.slice(0, at)} ${email.slice(at + 1)} `);
      } else kinds.add("email");
    }
    for (const d of ctx.periodDates) rest = rest.split(d).join(" ");
    for (const z of ctx.officeZips ?? []) rest = rest.replace(new RegExp(`\\b${z}\\b`, "g"), " ");
    const lower = reading.toLowerCase();
    // A patient key is 64 hex digits: a reading without such a run holds none of them.
    if (HEX_RUN.test(lower)) {
      keys ??= [...(ctx.patientKeys ?? [])].filter(Boolean).map((k) => k.toLowerCase());
      if (keys.some((key) => lower.includes(key))) kinds.add("patient_key");
    }
    for (const { kind, re } of detectors) if (re.test(rest)) kinds.add(kind);
    const collapsed = collapseDigitGroups(rest);
    for (const { kind, re } of collapsedDetectors) if (re.test(collapsed)) kinds.add(kind);
  }
  if (ctx.officeAddress?.[field] === text) {
    kinds.delete("street_address");
    kinds.delete("zip_code");
  }
  return [...kinds].map((kind) => ({ kind, field }));
}

/** What each kind is called in a message (never the value itself). */
export const identifierKindNames: Record<IdentifierKind, string> = {
  ssn: "a Social Security number",
  phone: "a phone or fax number",
  email: "an e-mail address",
  date: "a date",
  record_number: "a record, account or member number",
  url: "a web address",
  ip_address: "an IP address",
  serial_number: "a device or serial number",
  street_address: "a street address",
  zip_code: "a ZIP code",
  patient_key: "a patient key",
  unknown_field: "an unexpected field",
};

/**
 * The guard's verdict on an office's own free text — the legal name and billing e-mail that become
 * the Stripe Customer's `name` and `email` — read exactly as the outbox will scan them (the same
 * `scanText`, with the office's billing e-mail as the one address that may leave and no period
 * dates). Used at the door (POST /v1/offices): text the guard would block at the outbox is refused
 * when it is written, instead of being stored and failing every push to Stripe afterwards.
 * Findings name the field and the kind, never the value.
 */
export function officeTextFindings(office: {
  legalName?: string;
  billingEmail?: string;
  billingAddress?: { line1: string; line2: string | null; city: string; state: string | null; postalCode: string; country: string } | null;
}): Finding[] {
  const findings: Finding[] = [];
  const ctx: GuardContext = { billingEmail: office.billingEmail ?? "", periodDates: [] };
  if (office.legalName !== undefined) findings.push(...scanText(office.legalName, "legalName", ctx));
  if (office.billingEmail !== undefined) findings.push(...scanText(office.billingEmail, "billingEmail", ctx));
  const address = office.billingAddress;
  if (address) {
    // The address goes to the customer's address fields, where it may read as a street address
    // and a ZIP code (its own kinds, payment-plan §4.2) and nothing else: scanned as the outbox will.
    const fields = { line1: address.line1, line2: address.line2, city: address.city, state: address.state, postalCode: address.postalCode, country: address.country };
    for (const [key, value] of Object.entries(fields)) {
      if (value === null || value === "") continue;
      const field = `billingAddress.${key}`;
      findings.push(...scanText(value, field, { ...ctx, officeAddress: { [field]: value } }));
    }
  }
  return findings;
}

/** Decodes a form-encoded body into [key, value] pairs exactly as the receiver will see them. */
export function formFields(body: string): [string, string][] {
  if (body === "") return [];
  return [...new URLSearchParams(body).entries()];
}

/**
 * A patients tier line's description — "Active patients 1,001–10,000 — Nov 2026", made by a fixed
 * template (docs/payment-plan.md §6.1) — carries a plan's tier boundaries in fixed slots: numbers
 * of the plan, never of a person, each at most 999,999 (too short for an SSN, a phone or a record
 * number). Only when the whole value is exactly that template are the slots read as such and the
 * rest scanned as text; any other value, in any field, is scanned as it stands (so the collapsed
 * digits of "51–200" are not taken for a ZIP code only here).
 */
const LINE_DESCRIPTION_KEY = /^lines\[\d+\]\[description\]$/;

/** The text a field's value is scanned as: a tier line's description with its rank slots read as the template's. */
function scannedValue(key: string, value: string): string {
  const tier = LINE_DESCRIPTION_KEY.test(key) ? tierLineDescription.exec(value) : null;
  return tier ? `Active patients — ${tier[1]}` : value;
}

/**
 * Scans a whole outbound request. `fieldRules` says which form keys the operation may send and
 * which of them are numbers (amounts, quantities, timestamps: digits only, never scanned as
 * text); any other key is an `unknown_field` finding.
 */
export function scanRequest(req: OutboundRequest, ctx: GuardContext, fieldRules: { text: RegExp[]; numeric: RegExp[] }): Finding[] {
  const findings: Finding[] = [];
  // Path: fixed words and Stripe ids only.
  for (const segment of req.path.split("/").filter(Boolean)) {
    if (!/^(?:v1|[a-z_]+|(?:cus|in|ii|re|ch|pi|bps|evt|seti|pm|cn)_[A-Za-z0-9]+)$/.test(segment)) findings.push({ kind: "unknown_field", field: "path" });
  }
  if (req.query) findings.push(...formFields(req.query).flatMap(([k, v]) => scanText(`${k}=${v}`, "query", ctx)));
  for (const [key, value] of formFields(req.body)) {
    if (fieldRules.numeric.some((re) => re.test(key))) {
      if (!/^-?\d{1,15}$/.test(value)) findings.push({ kind: "unknown_field", field: key });
      continue;
    }
    if (!fieldRules.text.some((re) => re.test(key))) {
      findings.push({ kind: "unknown_field", field: key });
      continue;
    }
    findings.push(...scanText(scannedValue(key, value), key, ctx));
  }
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.toLowerCase() === "authorization") continue;
    findings.push(...scanText(value, `header:${name.toLowerCase()}`, ctx));
  }
  return findings;
}
