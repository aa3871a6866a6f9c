/**
 * The currencies a plan may be priced in: Stripe's presentment currencies (docs.stripe.com/currencies,
 * "Supported presentment currencies"), lowercase as its API takes them, less the codes ISO 4217
 * has withdrawn (EEK, HRK, LTL, LVL, MRO, STD, VEF, SLL), which Stripe no longer accepts. A plan in
 * any other code could never be invoiced, so it is refused when the plan is written.
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

const known: ReadonlySet<string> = new Set(stripeCurrencies);

export const isStripeCurrency = (code: string): code is StripeCurrency => known.has(code);
