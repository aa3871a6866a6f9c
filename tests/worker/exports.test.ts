import { SELF } from "cloudflare:test";
import { eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLog } from "../../src/db/audit";
import { invoiceLines, invoicePatients, invoices } from "../../src/db/invoices";
import { refunds } from "../../src/db/refunds";
import { csvField, escapeFormula } from "../../src/exports/csv";
import { datasets } from "../../src/exports/datasets";
import { countDbRoundTrips } from "../harness/round-trips";
import { exportStream } from "../../src/exports/stream";
import { newId } from "../../src/security/request-id";
import { bearer, mintToken } from "../harness/auth";
import { expectProblem } from "../harness/problem";
import { seedOffice, testDb } from "../harness/seed";

const db = testDb();
const at = (iso: string) => Date.parse(iso);
const LEGAL = `=cmd|' /C calc'!A0, "Quoted" LLC`;
let office = "";
let bulkOffice = "";
let invoiceId = "";
const BULK = 1203;

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(field), (field = "");
    else if (ch === "\r" && text[i + 1] === "\n") row.push(field), rows.push(row), (row = []), (field = ""), i++;
    else field += ch;
  }
  expect(field === "" && row.length === 0, "every record ends with CRLF").toBe(true);
  return rows;
}

beforeAll(async () => {
  office = (await seedOffice(db, { legalName: LEGAL })).id;
  invoiceId = newId("inv");
  await db.batch([
    db.insert(invoices).values({
      id: invoiceId, officeId: office, kind: "monthly", status: "paid", currency: "usd", periodStart: "2019-06-01", periodEnd: "2019-07-01",
      finalizedAt: at("2019-07-01T04:00:00Z"), paidAt: at("2019-07-02T10:00:00Z"), billablePatients: 2, subtotal: 4410, total: 4410, amountPaid: 4410, amountRefunded: 500, updatedAt: Date.now(),
    }),
    db.insert(invoiceLines).values([
      { id: newId("li"), invoiceId, kind: "patients", description: "Active patients 1–50 — Jun 2019", quantity: 2, unitAmount: 0, amount: 0, position: 0 },
      { id: newId("li"), invoiceId, kind: "base_fee", description: "Base fee, with \"quotes\",\r\nand a line break", quantity: 1, amount: 4900, position: 1 },
      { id: newId("li"), invoiceId, kind: "discount", description: "-10% off", category: "@SUM(1+1)", internalNote: "staff note: never exported", quantity: 1, amount: -490, position: 2 },
    ]),
    db.insert(invoicePatients).values({ invoiceId, officeId: office, patientKey: "pk-never-exported", countedAt: at("2019-06-01T04:00:00Z") }),
    db.insert(refunds).values({ id: newId("rf"), officeId: office, invoiceId, amount: 500, reason: "billing_error", status: "succeeded", requestedBy: "person-sub-123", createdAt: at("2019-07-03T00:00:00Z"), updatedAt: at("2019-07-03T00:00:00Z") }),
  ]);
  // More invoices than one page, in one statement.
  bulkOffice = (await seedOffice(db)).id;
  await db.run(sql`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${BULK})
    INSERT INTO invoices (id, office_id, kind, status, currency, period_start, period_end, total, subtotal, finalized_at, updated_at)
    SELECT 'inv_' || lower(hex(randomblob(16))), ${bulkOffice}, 'one_off', 'open', 'usd', '2019-08-01', '2019-09-01', i, i, ${at("2019-08-01T00:00:00Z")} + (i % 7) * 1000, 0 FROM n`);
});

const exportUrl = (dataset: string, q: string) => `https://billing.test/v1/exports/${dataset}?${q}`;

describe("CSV cells", () => {
  it("quotes per RFC 4180 and escapes text that would start a formula; numbers stay numbers", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField('a "b", c')).toBe('"a ""b"", c"');
    expect(csvField("line\r\nbreak")).toBe('"line\r\nbreak"');
    for (const start of ["=", "+", "-", "@", "\t", "\r"]) expect(escapeFormula(`${start}1`)).toBe(`'${start}1`);
    expect(csvField("=1+1")).toBe("'=1+1");
    expect(csvField("\r=x")).toBe(`"'\r=x"`);
    expect(csvField(-490)).toBe("-490");
    expect(csvField(null)).toBe("");
    expect(csvField(false)).toBe("false");
  });
});

describe("exports", () => {
  it("exports invoices as CSV: header, quoting, formula escape, office data only, audited with its row count", async () => {
    const token = await mintToken("platform_admin");
    const res = await SELF.fetch(exportUrl("invoices", `from=2019-07-01&to=2019-07-01&officeId=${office}`), { headers: bearer(token) });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="invoices-2019-07-01-2019-07-01.csv"');
    const text = await res.text();
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual([...datasets.invoices.columns]);
    expect(rows).toHaveLength(1);
    const row = Object.fromEntries(header!.map((h, i) => [h, rows[0]![i]]));
    expect(row).toMatchObject({ invoice_id: invoiceId, office_id: office, office_legal_name: `'${LEGAL}`, kind: "monthly", status: "paid", finalized_at: "2019-07-01T04:00:00.000Z", paid_at: "2019-07-02T10:00:00.000Z", voided_at: "", total: "4410", amount_refunded: "500" });
    expect(text).toContain(`"'=cmd|' /C calc'!A0, ""Quoted"" LLC"`);
    expect(text).not.toContain("pk-never-exported");
    const audit = await db.select().from(auditLog).where(eq(auditLog.requestId, res.headers.get("x-request-id")!));
    expect(audit.map((a) => [a.action, a.outcome, a.details])).toEqual([
      ["export.read", "allowed", { dataset: "invoices", from: "2019-07-01", to: "2019-07-01", format: "csv", officeId: office }],
      ["export.read", "succeeded", { dataset: "invoices", from: "2019-07-01", to: "2019-07-01", format: "csv", officeId: office, rows: 1 }],
    ]);
  });

  it("exports invoice lines (negative amounts as numbers, escaped text, no staff note), payments and refunds (no person), as CSV and NDJSON", async () => {
    const token = await mintToken("platform_admin");
    const q = `from=2019-07-01&to=2019-07-31&officeId=${office}`;
    const lines = parseCsv(await (await SELF.fetch(exportUrl("invoice-lines", q), { headers: bearer(token) })).text());
    expect(lines[0]).toEqual([...datasets["invoice-lines"].columns]);
    const col = (name: string) => lines[0]!.indexOf(name);
    expect(lines.slice(1).map((l) => [l[col("kind")], l[col("description")], l[col("category")], l[col("amount")]])).toEqual([
      ["patients", "Active patients 1–50 — Jun 2019", "", "0"],
      ["base_fee", 'Base fee, with "quotes",\r\nand a line break', "", "4900"],
      ["discount", "'-10% off", "'@SUM(1+1)", "-490"],
    ]);
    const nd = await SELF.fetch(exportUrl("invoice-lines", `${q}&format=ndjson`), { headers: bearer(token) });
    expect(nd.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    const body = await nd.text();
    expect(body).not.toContain("staff note");
    const objects = body.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects.map((o) => [o.kind, o.amount, o.category])).toEqual([["patients", 0, null], ["base_fee", 4900, null], ["discount", -490, "@SUM(1+1)"]]);

    const payments = (await (await SELF.fetch(exportUrl("payments", `${q}&format=ndjson`), { headers: bearer(token) })).text()).trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(payments).toEqual([{ invoice_id: invoiceId, office_id: office, currency: "usd", amount_paid: 4410, paid_at: "2019-07-02T10:00:00.000Z", collection_method: null, number: null, invoice_total: 4410, amount_refunded: 500 }]);
    const refundsCsv = await (await SELF.fetch(exportUrl("refunds", q), { headers: bearer(token) })).text();
    expect(parseCsv(refundsCsv).slice(1).map((r) => r.slice(1, 8))).toEqual([[invoiceId, office, "usd", "500", "billing_error", "succeeded", "api"]]);
    expect(refundsCsv).not.toContain("person-sub-123");
  });

  it("streams more rows than one page, in keyset order, each row once", async () => {
    const token = await mintToken("platform_admin");
    const res = await SELF.fetch(exportUrl("invoices", `from=2019-08-01&to=2019-08-01&officeId=${bulkOffice}&format=ndjson`), { headers: bearer(token) });
    expect(res.status).toBe(200);
    const rows = (await res.text()).trimEnd().split("\n").map((l) => JSON.parse(l) as { invoice_id: string; finalized_at: string; total: number });
    expect(rows).toHaveLength(BULK);
    expect(new Set(rows.map((r) => r.invoice_id)).size).toBe(BULK);
    expect(rows.map((r) => r.total).sort((a, b) => a - b)).toEqual(Array.from({ length: BULK }, (_, i) => i + 1));
    const keys = rows.map((r) => `${r.finalized_at}|${r.invoice_id}`);
    expect(keys).toEqual([...keys].sort());
  });

  it("reads the database a page at a time, as the client reads (no whole-result buffering)", async () => {
    const db = countDbRoundTrips();
    let done = -1;
    try {
      const stream = exportStream(testDb(), datasets.invoices, { fromAt: at("2019-08-01T00:00:00Z"), toAt: at("2019-08-02T00:00:00Z"), officeId: bulkOffice }, "csv", async (n) => void (done = n), 100);
      const reader = stream.getReader();
      const decoder = new TextDecoder();
      const first = await reader.read();
      expect(decoder.decode(first.value)).toBe(`${datasets.invoices.columns.join(",")}\r\n`);
      const second = await reader.read();
      expect(decoder.decode(second.value).split("\r\n").filter(Boolean)).toHaveLength(100);
      // One page read so far (and at most the next one prefetched).
      expect(db.trips).toBeGreaterThanOrEqual(1);
      expect(db.trips).toBeLessThanOrEqual(2);
      let rows = 100;
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        rows += decoder.decode(value).split("\r\n").filter(Boolean).length;
      }
      expect(rows).toBe(BULK);
      expect(db.trips).toBe(Math.ceil(BULK / 100));
      expect(done).toBe(BULK);
    } finally {
      db.restore();
    }
  });

  it("is for platform_admin only; bad input is a 400", async () => {
    for (const role of ["office_admin", "office_viewer", "clinical_system"] as const) {
      const token = await mintToken(role, [office]);
      await expectProblem(await SELF.fetch(exportUrl("invoices", `from=2019-07-01&to=2019-07-01&officeId=${office}`), { headers: bearer(token) }), 403, "FORBIDDEN");
    }
    const admin = await mintToken("platform_admin");
    for (const [dataset, q] of [
      ["patients", "from=2019-07-01&to=2019-07-01"],
      ["invoices", "from=2019-07-02&to=2019-07-01"],
      ["invoices", "from=2019-07-01"],
      ["invoices", "from=2019-07-01&to=2019-07-01&format=xlsx"],
      ["invoices", "from=2019-07-01&to=2019-07-01&officeId=nope"],
    ] as const) {
      await expectProblem(await SELF.fetch(exportUrl(dataset, q), { headers: bearer(admin) }), 400, "VALIDATION_FAILED");
    }
  });
});
