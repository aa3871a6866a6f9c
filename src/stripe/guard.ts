/**
 * The PHI egress guard: the last check before a request leaves for Stripe. It scans the serialized
 * request — path, query, every form field, the headers we set — and blocks it (fails closed) on any
 * text-detectable HIPAA Safe Harbor identifier kind, or on anything shaped like a patient key.
 * Defence in depth: payloads are already built from allowlist schemas (payloads.ts).
 */

export type GuardContext = {
  /** The office's own billing e-mail: the one e-mail address that may leave. */
  billingEmail: string;
  /** Billing period dates (`YYYY-MM-DD`) that may appear. */
  periodDates: string[];
  /** The office's own postal code(s), if it has any on record. */
  officeZips?: string[];
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
  { kind: "record_number", re: /\b(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9]{2,}(?:-?[a-z0-9]+)*\d{4,}[a-z0-9-]*\b/i },
  { kind: "record_number", re: /\b\d{7,}\b/ },
  { kind: "serial_number", re: /\b(?:serial|s\/n|imei|vin|device\s*id|udi)\b/i },
  { kind: "serial_number", re: /\b[A-HJ-NPR-Z0-9]{17}\b/ },
  { kind: "street_address", re: /\b\d{1,6}\s+(?:[a-z0-9.'-]+\s+){0,4}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|circle|cir|highway|hwy|parkway|pkwy|suite|ste|apt|apartment|unit)\b\.?/i },
  { kind: "street_address", re: /\b(?:p\.?\s*o\.?\s*box)\b/i },
  { kind: "zip_code", re: /\b\d{5}(?:-\d{4})?\b/ },
  { kind: "patient_key", re: /\b[0-9a-f]{64}\b/i },
];

const EMAIL_RE = /[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}/gi;

/** Scans one text value; `allowed` strips the values the context allows before the detectors run. */
export function scanText(text: string, field: string, ctx: GuardContext): Finding[] {
  const findings: Finding[] = [];
  if (ctx.allowedValues?.[field] === text) return findings;
  let rest = text;
  for (const email of text.match(EMAIL_RE) ?? []) {
    if (email.toLowerCase() === ctx.billingEmail.toLowerCase()) rest = rest.split(email).join(" ");
    else findings.push({ kind: "email", field });
  }
  for (const d of ctx.periodDates) rest = rest.split(d).join(" ");
  for (const z of ctx.officeZips ?? []) rest = rest.replace(new RegExp(`\\b${z}\\b`, "g"), " ");
  for (const key of ctx.patientKeys ?? []) if (key && text.toLowerCase().includes(key.toLowerCase())) findings.push({ kind: "patient_key", field });
  for (const { kind, re } of detectors) if (re.test(rest)) findings.push({ kind, field });
  return findings;
}

/** Decodes a form-encoded body into [key, value] pairs exactly as the receiver will see them. */
export function formFields(body: string): [string, string][] {
  if (body === "") return [];
  return [...new URLSearchParams(body).entries()];
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
    if (!/^(?:v1|[a-z_]+|(?:cus|in|ii|re|ch|pi|bps|evt)_[A-Za-z0-9]+)$/.test(segment)) findings.push({ kind: "unknown_field", field: "path" });
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
    findings.push(...scanText(value, key, ctx));
  }
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.toLowerCase() === "authorization") continue;
    findings.push(...scanText(value, `header:${name.toLowerCase()}`, ctx));
  }
  return findings;
}
