/**
 * The currencies a plan may be priced in.
 *
 * Source: Stripe, "Supported currencies" (https://docs.stripe.com/currencies — "Supported
 * presentment currencies", "Zero-decimal currencies", "Special cases"), and Stripe Support,
 * "Deprecation of fractional ISK charges and refunds"
 * (https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds).
 * Checked 2026-12-01.
 *
 * `stripeCurrencies`: Stripe's presentment currencies, lowercase as its API takes them, less the
 * codes ISO 4217 has withdrawn (EEK, HRK, LTL, LVL, MRO, STD, VEF, SLL), which Stripe no longer
 * accepts. A code outside this list could never be invoiced.
 *
 * This service bills **two-decimal currencies only** (docs/payment-plan.md §1.1): every amount is
 * an integer count of 1/100 of the currency's unit, and proration rounds to one such minor unit.
 * Refused at plan creation with 400, although Stripe presents them:
 * - the zero-decimal currencies (`zeroDecimalCurrencies`), whose API amount is a count of whole
 *   units (`500` is ¥500, not ¥5.00);
 * - ISK, which Stripe keeps as two-decimal in its API but, since 2023-04-14, accepts only in
 *   multiples of 100 (whole krónur): a prorated amount would be refused by Stripe at the push.
 * Three-decimal currencies (BHD, JOD, KWD, OMR, TND: amounts must end in 0) are not in the list.
 */
export const stripeCurrencies = [
  "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd", "bdt", "bgn", "bif", "bmd", "bnd", "bob",
  "brl", "bsd", "bwp", "byn", "bzd", "cad", "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
  "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl", "htg", "huf", "idr", "ils", "inr", "isk",
  "jmd", "jpy", "kes", "kgs", "khr", "kmf", "krw", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd", "mmk",
  "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok", "npr", "nzd", "pab", "pen", "pgk", "php", "pkr",
  "pln", "pyg", "qar", "ron", "rsd", "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "szl", "thb", "tjs",
  "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd", "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
] as const;

export type StripeCurrency = (typeof stripeCurrencies)[number];

/** Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal): amounts in whole units. */
export const zeroDecimalCurrencies = ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"] as const;

/** Two-decimal in Stripe's API, but charged only in whole units (multiples of 100): ISK (docs.stripe.com/currencies#special-cases). */
export const wholeUnitCurrencies = ["isk"] as const;

const known: ReadonlySet<string> = new Set(stripeCurrencies);
const notTwoDecimal: ReadonlySet<string> = new Set([...zeroDecimalCurrencies, ...wholeUnitCurrencies]);

export const isStripeCurrency = (code: string): code is StripeCurrency => known.has(code);

/** A currency whose amounts are integers in 1/100 of its unit, with no further rule at Stripe. */
export const isTwoDecimalCurrency = (code: string): boolean => isStripeCurrency(code) && !notTwoDecimal.has(code);

/** The currencies a plan version may use: Stripe's two-decimal presentment currencies. */
export const billableCurrencies: readonly StripeCurrency[] = stripeCurrencies.filter((c) => !notTwoDecimal.has(c));
