// The hostile cases of issue 14 (items 4 and 5), shared by the fuzzing drill (tools/drill.mjs):
// input that must be refused at ingress, and identifiers written to slip past the PHI guard,
// which must never reach Stripe.

/** Text every text field must refuse with 400 (nothing stored, nothing echoed). */
export const hostileText = [
  ["right-to-left override", "Lakeside \u202eCLL ecitcarP"],
  ["bidi isolate", "Lakeside \u2067Practice\u2069"],
  ["ANSI escapes", "\u001b[31mLakeside\u001b[0m Practice"],
  ["only zero-width characters", "\u200b\u200c\u200d\ufeff"],
  ["only invisible fillers", "\u3164\u2800"],
  ["NUL", "Probe\u0000 Family Practice"],
  ["lone surrogate", "Lakeside \ud800 Practice"],
  ["C1 control", "Lakeside \u009b Practice"],
];

/** Plan currencies Stripe does not support. */
export const hostileCurrencies = ["zzz", "xxx", "hrk", "USD"];

/** Event times before any office's window (docs/payment-plan.md §5.8). */
export const hostileEventTimes = ["0000-01-01T00:00:00Z", "1947-08-15T00:00:00Z", "1998-12-30T23:59:59Z"];

/** An undeclared query parameter, shaped like an identifier (never echoed back). */
export const undeclaredQuery = "ssn_123-45-6789=jane";

const b64 = (s) => Buffer.from(s, "utf8").toString("base64");

/**
 * One SSN (123-45-6789) written to evade a plain match; visible text, so it passes the text
 * schema, but the PHI guard's scan (run at the door for an office's legal name and billing
 * e-mail) must refuse it with 400 OFFICE_TEXT_LOOKS_LIKE_PHI, and it must never reach Stripe.
 * `ssnDigits` is what must never reach Stripe in any reading.
 */
export const ssnDigits = "123456789";
export const guardEvasions = [
  ["full-width digits", "Clinic １２３－４５－６７８９"],
  ["spaced digits", "Clinic 1 2 3 4 5 6 7 8 9"],
  ["spaced groups", "Clinic 123 45 6789"],
  ["en dashes", "Clinic 123\u201345\u20136789"],
  ["slashes", "Clinic 123/45/6789"],
  ["percent-encoding", "Clinic %31%32%33-%34%35-%36%37%38%39"],
  ["base64", `Clinic ${b64("123-45-6789")}`],
];
/** A billing e-mail whose local part is the SSN: it must be scanned like the rest. */
export const evasiveBillingEmail = "123-45-6789@drill.example";
/** Zero-width characters between the digits: refused at ingress already (invisible format characters). */
export const zeroWidthSsn = "Clinic 123\u200b45\u200b6789";

/**
 * Whether a logged Stripe request carries the SSN in any of the evasive forms, or plainly: read
 * raw, URL-decoded and NFKC-normalized.
 */
export function carriesSsn(text) {
  let decoded = text;
  try {
    decoded = decodeURIComponent(text.replace(/\+/g, " "));
  } catch {}
  const readings = [text, decoded, decoded.normalize("NFKC")];
  const forms = ["123-45-6789", ssnDigits, "6789@", ...guardEvasions.map(([, name]) => name.slice("Clinic ".length))];
  return readings.some((r) => forms.some((f) => r.includes(f)));
}
