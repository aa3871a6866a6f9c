import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalText, collapseDigitGroups, identifierKindNames, identifierKinds, officeTextFindings, readings, RECORD_TOKEN, scanRequest, scanText, type GuardContext, type IdentifierKind } from "../../../src/stripe/guard";
import { officeAddressAllowance, stripeAddress } from "../../../src/stripe/office-address";
import { addLinesPayload, couponPayload, creditNotePayload, customerPayload, customerUpdatePayload, fieldRules, invoicePayload, portalPayload, taxRatePayload } from "../../../src/stripe/payloads";
import { creditNoteMemos } from "../../../src/db/credit-notes";

const patientKey = "a".repeat(8) + "0123456789abcdef".repeat(3) + "b".repeat(8);
const ctx: GuardContext = {
  billingEmail: "billing@lakeside.example",
  periodDates: ["2026-11-01", "2026-12-01"],
  officeZips: ["10001"],
  allowedValues: { return_url: "https://billing.example/portal/return" },
  patientKeys: [patientKey],
};

/** One sample per Safe Harbor kind the guard detects in text. */
const samples: [IdentifierKind, string][] = [
  ["ssn", "123-45-6789"],
  ["phone", "(555) 123-4567"],
  ["phone", "+44 20 7946 0958"],
  ["email", "jane.roe@gmail.com"],
  ["date", "1980-02-03"],
  ["date", "02/03/1980"],
  ["date", "March 3, 1980"],
  ["record_number", "MRN 4471"],
  ["record_number", "AB1234567"],
  ["record_number", "member id 77"],
  ["url", "https://example.com/chart/7"],
  ["ip_address", "192.168.1.20"],
  ["serial_number", "1HGCM82633A004352"],
  ["serial_number", "device serial QX-7"],
  ["street_address", "742 Evergreen Terrace"],
  ["zip_code", "90210"],
  ["patient_key", patientKey],
];

/** Every form field that can carry text, per operation, with a clean value. */
const textFields: [keyof typeof fieldRules, string, string][] = [
  ["customer", "name", "Lakeside Family Practice LLC"],
  ["customer", "metadata[office_ref]", "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a"],
  ["invoice", "metadata[invoice_ref]", "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6"],
  ["addLines", "lines[0][description]", "Active patients — Nov 2026"],
  ["addLines", "lines[0][metadata][line_ref]", "il_0a1b2c3d4e5f60718293a4b5c6d7e8f9"],
  ["refund", "metadata[refund_ref]", "rf_0a1b2c3d4e5f60718293a4b5c6d7e8f9"],
  ["creditNote", "memo", "Service credit"],
  ["creditNote", "metadata[credit_note_ref]", "cn_0a1b2c3d4e5f60718293a4b5c6d7e8f9"],
  ["portal", "return_url", "https://billing.example/portal/return"],
  ["taxRate", "display_name", "Sales tax"],
  ["taxRate", "percentage", "8.25"],
  ["taxRate", "metadata[office_ref]", "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a"],
  ["invoice", "default_tax_rates[0]", "txr_1EO66sClCIKljWvs98IiVfHW"],
  ["invoice", "discounts[0][coupon]", "discount_inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6"],
  ["coupon", "name", "Discount — Nov 2026"],
  ["coupon", "metadata[invoice_ref]", "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6"],
];

const request = (op: keyof typeof fieldRules, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  scanRequest({ method: "POST", path: "/v1/customers", body: new URLSearchParams(fields).toString(), headers: { "Idempotency-Key": "ob_off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a_customer", ...headers } }, ctx, {
    text: [...fieldRules[op].text],
    numeric: [...fieldRules[op].numeric],
  });

describe("the PHI egress guard", () => {
  it("lets clean office-level requests through", () => {
    expect(request("customer", { name: "Lakeside Family Practice LLC", email: "billing@lakeside.example", "metadata[office_ref]": "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" })).toEqual([]);
    expect(
      request("invoice", {
        customer: "cus_NffrFeUfNV2Hib",
        currency: "usd",
        collection_method: "charge_automatically",
        "metadata[period_start]": "2026-11-01",
        "metadata[period_end]": "2026-12-01",
      }),
    ).toEqual([]);
    expect(request("addLines", { "lines[0][amount]": "40000", "lines[0][description]": "Active patients — Nov 2026", "lines[0][period][start]": "1793509200", "lines[1][description]": "Training" })).toEqual([]);
    expect(request("portal", { customer: "cus_NffrFeUfNV2Hib", return_url: "https://billing.example/portal/return" })).toEqual([]);
  });

  it("lets tax through (docs/payment-plan.md §11): a manual tax rate, and an invoice's tax params; nothing else of a tax rate", () => {
    expect(request("taxRate", { display_name: "Sales tax", percentage: "8.25", inclusive: "false", "metadata[office_ref]": "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" })).toEqual([]);
    expect(request("invoice", { customer: "cus_NffrFeUfNV2Hib", currency: "usd", "automatic_tax[enabled]": "true" })).toEqual([]);
    expect(request("invoice", { customer: "cus_NffrFeUfNV2Hib", currency: "usd", "default_tax_rates[0]": "txr_1EO66sClCIKljWvs98IiVfHW" })).toEqual([]);
    // Free text a tax rate could carry (description, jurisdiction) is no field of the operation.
    for (const field of ["description", "jurisdiction", "state", "metadata[patient]"]) {
      expect(request("taxRate", { display_name: "VAT", percentage: "20", inclusive: "false", [field]: "x" }).map((f) => [f.kind, f.field])).toContainEqual(["unknown_field", field]);
    }
    expect(request("invoice", { customer: "cus_NffrFeUfNV2Hib", "default_tax_rates[1]": "txr_1EO66sClCIKljWvs98IiVfHW" }).map((f) => f.kind)).toContain("unknown_field");
  });

  it("the tax payloads are allowlists: only the fixed names, exclusive rates of at most two decimals, never both tax kinds", () => {
    const rate = { display_name: "Sales tax", percentage: 8.25, inclusive: false, metadata: { office_ref: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" } } as const;
    expect(taxRatePayload.parse(rate)).toEqual(rate);
    for (const bad of [{ ...rate, display_name: "Jane Roe surcharge" }, { ...rate, inclusive: true }, { ...rate, percentage: 8.255 }, { ...rate, percentage: 0 }, { ...rate, description: "x" }]) {
      expect(taxRatePayload.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    const invoice = { customer: "cus_NffrFeUfNV2Hib", currency: "usd", auto_advance: false, pending_invoice_items_behavior: "exclude", collection_method: "charge_automatically", metadata: { office_ref: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a", invoice_ref: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6" } } as const;
    expect(invoicePayload.safeParse({ ...invoice, automatic_tax: { enabled: true } }).success).toBe(true);
    expect(invoicePayload.safeParse({ ...invoice, default_tax_rates: ["txr_1EO66sClCIKljWvs98IiVfHW"] }).success).toBe(true);
    expect(invoicePayload.safeParse({ ...invoice, automatic_tax: { enabled: true }, default_tax_rates: ["txr_1EO66sClCIKljWvs98IiVfHW"] }).success).toBe(false);
    expect(invoicePayload.safeParse({ ...invoice, default_tax_rates: ["txr_1EO66sClCIKljWvs98IiVfHW", "txr_2EO66sClCIKljWvs98IiVfHW"] }).success).toBe(false);
    expect(invoicePayload.safeParse({ ...invoice, default_tax_rates: ["jane roe"] }).success).toBe(false);
  });

  for (const [op, field, clean] of textFields) {
    for (const [kind, sample] of samples) {
      it(`blocks ${kind} (${sample}) in ${op} ${field}`, () => {
        const findings = request(op, { [field]: `${clean} ${sample}` });
        expect(findings.map((f) => f.kind)).toContain(kind);
        expect(findings.every((f) => f.field === field || f.kind === "unknown_field")).toBe(true);
      });
    }
  }

  it("lets a patients tier line through as quantity × inline unit price, its ranks read as the template's slots only there", () => {
    const tierLine = {
      "lines[0][quantity]": "37",
      "lines[0][price_data][currency]": "usd",
      "lines[0][price_data][product_data][name]": "Active patients",
      "lines[0][price_data][unit_amount]": "600",
      "lines[0][metadata][line_ref]": "il_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    };
    for (const d of ["Active patients 51–200 — Nov 2026", "Active patients 1,001–10,000 — Nov 2026", "Active patients 201+ — Nov 2026", "Active patients 2 — Nov 2026"]) {
      expect(request("addLines", { ...tierLine, "lines[0][description]": d }), d).toEqual([]);
    }
    // Not the template: scanned as it stands (the collapsed digits read as an SSN, a ZIP).
    expect(request("addLines", { ...tierLine, "lines[0][description]": "Active patients 123-45-6789 — Nov 2026" }).map((f) => f.kind)).toContain("ssn");
    expect(request("addLines", { ...tierLine, "lines[0][description]": "Active patients 51–200 (Nov 2026)" }).map((f) => f.kind)).toContain("zip_code");
    // The template's reading applies to line descriptions only.
    expect(request("customer", { name: "Active patients 51–200 — Nov 2026", email: "billing@lakeside.example", "metadata[office_ref]": "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" }).map((f) => f.kind)).toContain("zip_code");
    // A product name other than the fixed one is no field of the operation.
    expect(request("addLines", { ...tierLine, "lines[0][description]": "Active patients 2 — Nov 2026", "lines[0][price_data][product_data][description]": "x" }).map((f) => f.kind)).toContain("unknown_field");
  });

  it("finds one of the office's patient keys anywhere in a value: inside other text, in upper case, base64-wrapped; a 64-hex run that is not one is still a patient key's shape", () => {
    const other = "c".repeat(64);
    const inside = (v: string) => scanText(v, "memo", ctx).map((f) => f.kind);
    expect(inside(`ref${patientKey}x`)).toContain("patient_key");
    expect(inside(`REF-${patientKey.toUpperCase()}-END`)).toContain("patient_key");
    expect(inside(btoa(`ref:${patientKey}`))).toContain("patient_key");
    expect(inside(`ref${other}x`)).not.toContain("patient_key"); // no boundary, not a key of the office
    expect(inside(other)).toContain("patient_key"); // the shape alone
    expect(inside("Service credit")).toEqual([]);
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), fc.boolean(), (before, after, upper) => {
        const key = upper ? patientKey.toUpperCase() : patientKey;
        expect(inside(`${before}${key}${after}`)).toContain("patient_key");
      }),
      { numRuns: 300 },
    );
  });

  it("reads record-number tokens in linear time, exactly as the nested pattern it replaced (which took seconds on a 31-character legal name)", () => {
    // The former pattern: same language, exponential backtracking on a long token without 4 digits in a row.
    const RECORD_TOKEN_NESTED = /\b(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9]{2,}(?:-?[a-z0-9]+)*\d{4,}[a-z0-9-]*\b/i;
    fc.assert(
      fc.property(fc.array(fc.constantFrom("a", "B", "1", "2", "-", "_", " ", "."), { maxLength: 14 }), (chars) => {
        const text = chars.join("");
        expect(RECORD_TOKEN.test(text)).toBe(RECORD_TOKEN_NESTED.test(text));
      }),
      { numRuns: 20_000 },
    );
    // Legal names at their 200-character limit that the old pattern could not finish reading.
    for (const legalName of ["ab1".repeat(66) + "x", "a-1".repeat(66), "1a".repeat(100), "ab" + "1".repeat(3).repeat(60) + "_x", "ab1-".repeat(50)]) {
      expect(legalName.length).toBeLessThanOrEqual(200);
      const kinds = officeTextFindings({ legalName }).map((f) => f.kind);
      expect(kinds.includes("record_number")).toBe(RECORD_TOKEN.test(legalName) || /\b\d{7,}\b/.test(legalName));
    }
    expect(officeTextFindings({ legalName: `${"ab1".repeat(20)}x Clinic 12345678` }).map((f) => f.kind)).toContain("record_number");
  });

  it("blocks identifiers in the headers we set, the path and the query", () => {
    for (const [kind, sample] of samples) {
      expect(request("customer", { name: "Lakeside" }, { "Idempotency-Key": `ob ${sample}` }).map((f) => f.kind), `header ${kind}`).toContain(kind);
    }
    const pathFinding = scanRequest({ method: "GET", path: "/v1/customers/jane roe", body: "", headers: {} }, ctx, { text: [], numeric: [] });
    expect(pathFinding.map((f) => f.kind)).toContain("unknown_field");
    const query = scanRequest({ method: "GET", path: "/v1/invoices", query: "email=jane.roe%40gmail.com", body: "", headers: {} }, ctx, { text: [], numeric: [] });
    expect(query.map((f) => f.kind)).toContain("email");
  });

  it("blocks fields the operation does not send, and non-numbers in numeric fields", () => {
    expect(request("customer", { name: "Lakeside", phone: "5551234567" }).map((f) => f.kind)).toContain("unknown_field");
    expect(request("customer", { name: "Lakeside", description: "Patient Jane" }).map((f) => f.kind)).toContain("unknown_field");
    expect(request("addLines", { "lines[0][amount]": "12 patients" }).map((f) => f.kind)).toContain("unknown_field");
  });

  it("allows the office's own e-mail, the billing period's dates and the office's own ZIP only", () => {
    expect(scanText("billing@lakeside.example", "email", ctx)).toEqual([]);
    expect(scanText("Nov 2026 (2026-11-01 to 2026-12-01)", "x", ctx)).toEqual([]);
    expect(scanText("Lakeside, NY 10001", "name", ctx)).toEqual([]);
    expect(scanText("Lakeside, NY 10002", "name", ctx).map((f) => f.kind)).toContain("zip_code");
    expect(scanText("2026-11-02", "x", ctx).map((f) => f.kind)).toContain("date");
    expect(scanText("https://billing.example/portal/return?next=1", "return_url", ctx).map((f) => f.kind)).toContain("url");
  });
});

/** Base64 (standard alphabet) of a UTF-8 string. */
const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

/** Issue 14 item 5: an identifier written to slip past a plain match is still that identifier. */
const evasions: [string, string][] = [
  ["full-width digits", "１２３－４５－６７８９"],
  ["full-width digits, no separators", "１２３４５６７８９"],
  ["zero-width characters between digits", "123\u200b-45\u200c-67\u200d89"],
  ["zero-width no-break space and word joiner", "123\ufeff45\u20606789"],
  ["soft hyphens", "123\u00ad45\u00ad6789"],
  ["spaced digits", "1 2 3 4 5 6 7 8 9"],
  ["spaced groups", "123 45 6789"],
  ["en dashes", "123\u201345\u20136789"],
  ["em dashes and minus signs", "123\u201445\u22126789"],
  ["slashes", "123/45/6789"],
  ["underscores", "123_45_6789"],
  ["no-break spaces", "123\u00a045\u00a06789"],
  ["percent-encoding", "%31%32%33-%34%35-%36%37%38%39"],
  ["double percent-encoding", "%2531%2532%2533-45-6789"],
  ["base64", b64("123-45-6789")],
  ["base64 without padding", b64("SSN 123-45-6789").replace(/=+$/, "")],
  ["base64url", b64("jane.roe@gmail.com").replace(/\+/g, "-").replace(/\//g, "_")],
  ["base64 of percent-encoding", b64("%31%32%33-45-6789")],
];

describe("the PHI egress guard reads values canonically before matching (issue 14 item 5)", () => {
  for (const [how, sample] of evasions) {
    it(`blocks an identifier written with ${how} in the office's legal name`, () => {
      const findings = request("customer", { name: `Lakeside Family Practice ${sample}`, email: "billing@lakeside.example", "metadata[office_ref]": "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" });
      expect(findings.length, how).toBeGreaterThan(0);
      expect(findings.every((f) => f.field === "name")).toBe(true);
    });
  }

  it("names the kind when the canonical reading shows it", () => {
    expect(scanText("１２３－４５－６７８９", "name", ctx).map((f) => f.kind)).toContain("ssn");
    expect(scanText("123 45 6789", "name", ctx).map((f) => f.kind)).toContain("ssn");
    expect(scanText("555 123 4567", "name", ctx).map((f) => f.kind)).toContain("phone");
    expect(scanText(b64("jane.roe@gmail.com"), "name", ctx).map((f) => f.kind)).toContain("email");
    expect(scanText("jane%2Eroe%40gmail%2Ecom", "name", ctx).map((f) => f.kind)).toContain("email");
    expect(scanText("０２／０３／１９８０", "name", ctx).map((f) => f.kind)).toContain("date");
  });

  it("scans the billing e-mail like the rest: the office's own address may leave, an identifier in it may not", () => {
    const own = { ...ctx, billingEmail: "123-45-6789@lakeside.example" };
    expect(scanText("123-45-6789@lakeside.example", "email", own).map((f) => f.kind)).toContain("ssn");
    const customer = scanRequest(
      { method: "POST", path: "/v1/customers", body: new URLSearchParams({ name: "Lakeside", email: "123-45-6789@lakeside.example" }).toString(), headers: {} },
      own,
      { text: [...fieldRules.customer.text], numeric: [...fieldRules.customer.numeric] },
    );
    expect(customer).toContainEqual({ kind: "ssn", field: "email" });
    const phone = { ...ctx, billingEmail: "5551234567@lakeside.example" };
    expect(scanText("5551234567@lakeside.example", "email", phone).length).toBeGreaterThan(0);
    const spaced = { ...ctx, billingEmail: "jane.1980.02.03@lakeside.example" };
    expect(scanText("jane.1980.02.03@lakeside.example", "email", spaced).length).toBeGreaterThan(0);
    // The office's own plain address still leaves, in any case.
    expect(scanText("Billing@Lakeside.example", "email", ctx)).toEqual([]);
  });

  it("still lets legitimate office names, e-mails and our own references through", () => {
    const clean = [
      "Smith & Jones Family Practice, LLC",
      "Lakeside Family Practice LLC",
      "Müller–Lüdenscheidt Praxis für Allgemeinmedizin GmbH",
      "Clínica São José — Saúde da Família",
      "O'Brien Pediatrics, P.C.",
      "Dr. Ana Sánchez & Associates",
      "Zahnarztpraxis Dr. Weiß",
      "Advanced Dermatology of the Rockies",
      "North Shore Women's Health",
      "医療法人 さくらクリニック",
    ];
    for (const name of clean) expect(scanText(name, "name", ctx), name).toEqual([]);
    for (const email of ["billing@lakeside.example", "accounts.payable@smith-jones.example", "ap+stripe@clinic.example"]) {
      expect(scanText(email, "email", { ...ctx, billingEmail: email }), email).toEqual([]);
    }
    // Random opaque references (our own ids) never read as base64 text, or as digits.
    const hex = () => [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
    for (let i = 0; i < 2000; i++) {
      for (const [field, value] of [
        ["metadata[office_ref]", `off_${hex()}`],
        ["metadata[invoice_ref]", `inv_${hex()}`],
        ["header:idempotency-key", `invoice_inv_${hex()}_lines`],
      ] as const) {
        expect(scanText(value, field, ctx), value).toEqual([]);
      }
    }
  });

  it("never blocks an office name made of the words practices are named with (property)", () => {
    const words = ["Smith", "Jones", "Family", "Practice", "Pediatrics", "Dermatology", "Orthopedic", "Associates", "Clinic", "Medical", "Group", "Health", "Center", "Lakeside", "Riverside", "Northwest", "Cardiology", "Oncology", "Women's", "Children's", "Wellness", "Primary", "Care", "Partners", "Internal", "Medicine", "Surgical", "Specialists", "Dental", "Orthodontics", "Vision", "Physical", "Therapy", "Rehabilitation", "Urgent", "Community", "Valley", "Integrated", "Behavioral", "Psychiatry", "Counseling", "Services", "Sánchez", "Müller", "O'Brien", "Nguyen", "García", "Kowalski", "Anderson", "Thompson", "Hernandez", "LLC", "PLLC", "P.C.", "Inc.", "&", "of", "the", "and", "Dr.", "MD", "DO", "Foundation", "Institute", "Network", "Allergy", "Asthma", "Endocrinology", "Gastroenterology", "Neurology", "Podiatry", "Radiology", "Urology", "Chiropractic", "Acupuncture", "Sleep", "Pain", "Management", "Sports", "Fertility", "Obstetrics", "Gynecology", "Hearing", "Speech", "Nutrition", "—", ","];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...words), { minLength: 1, maxLength: 7 }), (parts) => {
        const name = parts.join(" ");
        expect(scanText(name, "name", ctx), name).toEqual([]);
      }),
      { numRuns: 3000, seed: 14 },
    );
  });

  it("reads canonically: NFKC, invisible characters out, dashes as '-', percent-encoding decoded", () => {
    expect(canonicalText("１２３\u200b－４５")).toBe("123-45");
    expect(canonicalText("a\u2013b\u00a0c")).toBe("a-b c");
    expect(canonicalText("%2531")).toBe("1");
    expect(collapseDigitGroups("123 / 45 – 6789 and 12")).toBe("123456789 and 12");
    expect(readings(b64("123-45-6789"))).toContain("123-45-6789");
  });
});

describe("allowlist payload schemas", () => {
  it("accept office-level payloads and refuse anything else", () => {
    expect(customerPayload.safeParse({ name: "Lakeside", email: "billing@lakeside.example", metadata: { office_ref: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" } }).success).toBe(true);
    expect(customerPayload.safeParse({ name: "Lakeside", email: "billing@lakeside.example", metadata: { office_ref: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a", patient: "x" } }).success).toBe(false);
    expect(customerPayload.safeParse({ name: "Lakeside", email: "billing@lakeside.example", phone: "555", metadata: { office_ref: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a" } }).success).toBe(false);
    const line = { amount: 800, description: "Active patients — Nov 2026", metadata: { line_ref: "il_0a1b2c3d4e5f60718293a4b5c6d7e8f9" } };
    expect(addLinesPayload.safeParse({ lines: [line] }).success).toBe(true);
    expect(addLinesPayload.safeParse({ lines: [{ ...line, description: "Visit for Jane Roe" }] }).success).toBe(false);
    expect(addLinesPayload.safeParse({ lines: [{ ...line, metadata: { line_ref: "patient-42" } }] }).success).toBe(false);
    // Only a discount line (§6.10) may carry a negative amount.
    expect(addLinesPayload.safeParse({ lines: [{ ...line, description: "Discount — Nov 2026", amount: -490 }] }).success).toBe(true);
    expect(addLinesPayload.safeParse({ lines: [{ ...line, amount: -490 }] }).success).toBe(false);
    expect(addLinesPayload.safeParse({ lines: [{ ...line, description: "Discount for Jane Roe", amount: -490 }] }).success).toBe(false);
    expect(
      invoicePayload.safeParse({
        customer: "cus_NffrFeUfNV2Hib",
        currency: "usd",
        collection_method: "charge_automatically",
        auto_advance: false,
        pending_invoice_items_behavior: "exclude",
        metadata: { office_ref: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a", invoice_ref: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6", note: "internal" },
      }).success,
    ).toBe(false);
    expect(portalPayload.safeParse({ customer: "cus_NffrFeUfNV2Hib", return_url: "https://billing.example/portal/return" }).success).toBe(true);
  });

  it("a credit note (§8.10): Stripe's reasons, a fixed memo, the whole of a paid invoice's credit to a refund or the balance, our references only", () => {
    const note = {
      invoice: "in_1MtHbELkdIwHu7ixl4OzzPMv",
      amount: 5000,
      reason: "order_change",
      memo: "Service credit",
      metadata: { invoice_ref: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6", credit_note_ref: "cn_0a1b2c3d4e5f60718293a4b5c6d7e8f9" },
    };
    expect(creditNotePayload.safeParse(note).success).toBe(true);
    for (const memo of Object.values(creditNoteMemos)) expect(creditNotePayload.safeParse({ ...note, memo }).success, memo).toBe(true);
    expect(creditNotePayload.safeParse({ ...note, refund_amount: 5000 }).success).toBe(true);
    expect(creditNotePayload.safeParse({ ...note, credit_amount: 5000 }).success).toBe(true);
    // Refused: free text, another reason, a split, both, out of band, a line, foreign metadata.
    expect(creditNotePayload.safeParse({ ...note, memo: "Credit for Jane Roe's visit" }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...note, reason: "requested_by_customer" }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...note, refund_amount: 4000 }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...note, refund_amount: 5000, credit_amount: 5000 }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...note, out_of_band_amount: 5000 }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...note, lines: [{ type: "custom_line_item", description: "Jane Roe", unit_amount: 5000, quantity: 1 }] }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...note, metadata: { ...note.metadata, patient: "x" } }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...note, metadata: { ...note.metadata, credit_note_ref: "patient-42" } }).success).toBe(false);
    // The request as sent passes the guard; a field the operation does not send does not.
    const form = { invoice: note.invoice, amount: "5000", refund_amount: "5000", reason: note.reason, memo: note.memo, "metadata[invoice_ref]": note.metadata.invoice_ref, "metadata[credit_note_ref]": note.metadata.credit_note_ref };
    expect(request("creditNote", form)).toEqual([]);
    expect(request("creditNote", { ...form, out_of_band_amount: "5000" }).map((f) => f.kind)).toContain("unknown_field");
    expect(request("creditNote", { ...form, "lines[0][description]": "Service credit" }).map((f) => f.kind)).toContain("unknown_field");
    expect(scanRequest({ method: "GET", path: "/v1/credit_notes/cn_1MxvRqLkdIwHu7ixY0xbUcxk", body: "", headers: {} }, ctx, { text: [], numeric: [] })).toEqual([]);
  });

  it("a credit note by line (§8.10): Stripe's own invoice lines with amounts, never a custom line, never with a whole amount too", () => {
    const base = { invoice: "in_1MtHbELkdIwHu7ixl4OzzPMv", reason: "product_unsatisfactory", memo: "Correction of a billing error", metadata: { invoice_ref: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6", credit_note_ref: "cn_0a1b2c3d4e5f60718293a4b5c6d7e8f9" } } as const;
    const lines = [
      { type: "invoice_line_item", invoice_line_item: "il_1Pgc74B7WZ01zgkWWh45tUBA", amount: 900 },
      { type: "invoice_line_item", invoice_line_item: "il_1Pgc74B7WZ01zgkWWh45tUBB", amount: 400 },
    ] as const;
    expect(creditNotePayload.safeParse({ ...base, lines }).success).toBe(true);
    expect(creditNotePayload.safeParse({ ...base, lines, refund_amount: 1_300 }).success).toBe(true);
    expect(creditNotePayload.safeParse({ ...base, lines, refund_amount: 900 }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...base, lines, amount: 1_300 }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...base, lines: [{ type: "custom_line_item", description: "Jane Roe's visit", unit_amount: 900, quantity: 1 }] }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...base, lines: [{ ...lines[0], description: "Jane Roe" }] }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...base, lines: [{ ...lines[0], invoice_line_item: "Jane Roe" }] }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...base, lines: [{ ...lines[0], amount: 0 }] }).success).toBe(false);
    expect(creditNotePayload.safeParse({ ...base, lines: [] }).success).toBe(false);
    const form = { invoice: base.invoice, reason: base.reason, memo: base.memo, "lines[0][type]": "invoice_line_item", "lines[0][invoice_line_item]": lines[0].invoice_line_item, "lines[0][amount]": "900", "metadata[invoice_ref]": base.metadata.invoice_ref };
    expect(request("creditNote", form)).toEqual([]);
    expect(request("creditNote", { ...form, "lines[0][unit_amount]": "900" }).map((f) => [f.kind, f.field])).toContainEqual(["unknown_field", "lines[0][unit_amount]"]);
    expect(request("creditNote", { ...form, "lines[0][invoice_line_item]": "123-45-6789" }).map((f) => f.kind)).toContain("ssn");
    // Reading the invoice's lines back (GET, no body) passes.
    expect(scanRequest({ method: "GET", path: "/v1/invoices/in_1MtHbELkdIwHu7ixl4OzzPMv/lines", query: "limit=100", body: "", headers: {} }, ctx, { text: [], numeric: [] })).toEqual([]);
    // The reconciliation's list of an invoice's credit notes (§8.10) passes; a patient's data in the query does not.
    expect(scanRequest({ method: "GET", path: "/v1/credit_notes", query: "invoice=in_1MtHbELkdIwHu7ixl4OzzPMv&limit=100", body: "", headers: {} }, ctx, { text: [], numeric: [] })).toEqual([]);
    expect(scanRequest({ method: "GET", path: "/v1/credit_notes", query: "invoice=123-45-6789", body: "", headers: {} }, ctx, { text: [], numeric: [] }).map((f) => f.kind)).toContain("ssn");
  });
});

describe("a discount under Stripe Tax (payment-plan §6.10): the invoice's own amount-off coupon", () => {
  const coupon = {
    id: "discount_inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6",
    amount_off: 590,
    currency: "usd",
    duration: "once",
    max_redemptions: 1,
    name: "Discount — Nov 2026",
    metadata: { office_ref: "off_4f9c2a7e1b3d4c5e8f6a7b8c9d0e1f2a", invoice_ref: "inv_7d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6" },
  } as const;
  it("the coupon payload is an allowlist: our id, an amount, once, one redemption, the line's fixed name, our references", () => {
    expect(couponPayload.parse(coupon)).toEqual(coupon);
    for (const bad of [
      { ...coupon, id: "JANEROE10" },
      { ...coupon, name: "Courtesy for Jane Roe" },
      { ...coupon, percent_off: 10 },
      { ...coupon, amount_off: 0 },
      { ...coupon, duration: "forever" },
      { ...coupon, max_redemptions: 2 },
      { ...coupon, metadata: { ...coupon.metadata, patient: "x" } },
      { ...coupon, redeem_by: 1_800_000_000 },
    ]) {
      expect(couponPayload.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
  it("the coupon request and an invoice naming it pass the guard; other fields and identifiers in them do not", () => {
    const form = { id: coupon.id, amount_off: "590", currency: "usd", duration: "once", max_redemptions: "1", name: coupon.name, "metadata[office_ref]": coupon.metadata.office_ref, "metadata[invoice_ref]": coupon.metadata.invoice_ref };
    expect(request("coupon", form)).toEqual([]);
    expect(request("coupon", { ...form, percent_off: "10" }).map((f) => [f.kind, f.field])).toContainEqual(["unknown_field", "percent_off"]);
    expect(request("coupon", { ...form, name: "Courtesy 123-45-6789" }).map((f) => f.kind)).toContain("ssn");
    expect(request("invoice", { customer: "cus_NffrFeUfNV2Hib", currency: "usd", "automatic_tax[enabled]": "true", "discounts[0][coupon]": coupon.id })).toEqual([]);
    expect(request("invoice", { customer: "cus_NffrFeUfNV2Hib", "discounts[0][promotion_code]": "promo_1" }).map((f) => f.kind)).toContain("unknown_field");
    const invoice = { customer: "cus_NffrFeUfNV2Hib", currency: "usd", auto_advance: false, pending_invoice_items_behavior: "exclude", collection_method: "charge_automatically", metadata: { office_ref: coupon.metadata.office_ref, invoice_ref: coupon.metadata.invoice_ref } } as const;
    expect(invoicePayload.safeParse({ ...invoice, automatic_tax: { enabled: true }, discounts: [{ coupon: coupon.id }] }).success).toBe(true);
    expect(invoicePayload.safeParse({ ...invoice, automatic_tax: { enabled: true }, discounts: [{ coupon: "JANEROE10" }] }).success).toBe(false);
    expect(invoicePayload.safeParse({ ...invoice, default_tax_rates: ["txr_1EO66sClCIKljWvs98IiVfHW"], discounts: [{ coupon: coupon.id }] }).success).toBe(false);
  });
});

describe("officeTextFindings (the guard's scan at the door, POST /v1/offices)", () => {
  it("finds what the outbox would block in the legal name or the billing e-mail, by field and kind", () => {
    expect(officeTextFindings({ legalName: "Clinic １２３－４５－６７８９", billingEmail: "billing@clinic.example" })).toEqual([{ kind: "ssn", field: "legalName" }]);
    expect(officeTextFindings({ legalName: "Clinic", billingEmail: "123-45-6789@x.test" })).toEqual([{ kind: "ssn", field: "billingEmail" }]);
    expect(officeTextFindings({ legalName: "Lakeside MRN A1234567", billingEmail: "billing@lakeside.example" }).map((f) => f.kind)).toContain("record_number");
  });

  it("passes plain office names and e-mails, and names every kind in words", () => {
    for (const legalName of ["Smith Family Clinic 2", "Lakeside Family Practice LLC", "Dr. Ana Sánchez & Associates", "医療法人 さくらクリニック"]) {
      expect(officeTextFindings({ legalName, billingEmail: "billing+decline@smith-family.example" }), legalName).toEqual([]);
    }
    for (const kind of identifierKinds) expect(identifierKindNames[kind]).toMatch(/^an? /);
  });
});

describe("the office's own address on its customer (payment-plan §4.2)", () => {
  const address = { line1: "742 Evergreen Terrace", line2: "Suite 4", city: "Springfield", state: "IL", postalCode: "62704", country: "US" };
  const withAddress: GuardContext = { ...ctx, ...officeAddressAllowance(address) };
  const update = (fields: Record<string, string>) =>
    scanRequest({ method: "POST", path: "/v1/customers/cus_NffrFeUfNV2Hib", body: new URLSearchParams(fields).toString(), headers: {} }, withAddress, {
      text: [...fieldRules.customerUpdate.text],
      numeric: [...fieldRules.customerUpdate.numeric],
    });
  const sent = Object.fromEntries(Object.entries(stripeAddress(address)).map(([k, v]) => [`address[${k}]`, v]));

  it("passes the recorded address, exactly as stored, in the address fields", () => {
    expect(update({ name: "Lakeside Family Practice LLC", email: "billing@lakeside.example", ...sent })).toEqual([]);
    expect(customerUpdatePayload.safeParse({ name: "Lakeside", email: "billing@lakeside.example", address: stripeAddress(address) }).success).toBe(true);
    expect(customerUpdatePayload.safeParse({ name: "Lakeside", email: "billing@lakeside.example", address: "" }).success).toBe(true);
    expect(customerUpdatePayload.safeParse({ name: "Lakeside", email: "billing@lakeside.example", address: { ...stripeAddress(address), note: "x" } }).success).toBe(false);
  });

  it("still blocks an address elsewhere, another address in the fields, and every other kind in them", () => {
    expect(update({ name: "742 Evergreen Terrace" }).map((f) => f.kind)).toContain("street_address");
    expect(update({ ...sent, "address[line1]": "12 Elm Street" }).map((f) => [f.kind, f.field])).toEqual([["street_address", "address[line1]"]]);
    expect(update({ ...sent, "address[postal_code]": "90210" }).map((f) => f.kind)).toEqual(["zip_code"]);
    // A value that is not the stored one is scanned like any text, with every detector.
    expect(update({ ...sent, "address[line2]": "Suite 123-45-6789" }).map((f) => f.kind)).toContain("ssn");
    // Without a recorded address, nothing is allowed in them.
    const bare = scanRequest({ method: "POST", path: "/v1/customers/cus_NffrFeUfNV2Hib", body: new URLSearchParams(sent).toString(), headers: {} }, ctx, {
      text: [...fieldRules.customerUpdate.text],
      numeric: [],
    });
    expect(bare.map((f) => f.kind)).toEqual(expect.arrayContaining(["street_address", "zip_code"]));
  });

  it("a recorded address that carries another identifier kind is still blocked", () => {
    const odd = { ...address, line2: "Attn 123-45-6789" };
    const oddCtx: GuardContext = { ...ctx, ...officeAddressAllowance(odd) };
    const fields = Object.fromEntries(Object.entries(stripeAddress(odd)).map(([k, v]) => [`address[${k}]`, v]));
    const findings = scanRequest({ method: "POST", path: "/v1/customers/cus_NffrFeUfNV2Hib", body: new URLSearchParams(fields).toString(), headers: {} }, oddCtx, {
      text: [...fieldRules.customerUpdate.text],
      numeric: [],
    });
    expect(findings).toEqual([{ kind: "ssn", field: "address[line2]" }]);
  });
});
