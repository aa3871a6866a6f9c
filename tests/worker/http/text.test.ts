import { SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { billableCurrencies, stripeCurrencies, zeroDecimalCurrencies } from "../../../src/billing/currencies";
import { offices } from "../../../src/db/offices";
import { text } from "../../../src/http/text";
import { bearer, mintToken } from "../../harness/auth";
import { expectProblem } from "../../harness/problem";
import { seedOffice, seedPlan, testDb } from "../../harness/seed";

/** Issue 14 item 4: hostile text that used to be stored. */
const hostile: [string, string][] = [
  ["a right-to-left override", "Lakeside \u202eCLL ecitcarP"],
  ["a bidi isolate", "Lakeside \u2067Practice\u2069"],
  ["a left-to-right mark", "Lakeside\u200e Practice"],
  ["ANSI escapes", "\u001b[31mLakeside\u001b[0m Practice"],
  ["only zero-width characters", "\u200b\u200c\u200d\ufeff"],
  ["only invisible fillers", "\u3164\u2800 \u115f"],
  ["a zero-width space inside", "Lake\u200bside Practice"],
  ["a NUL", "Probe\u0000 Family Practice"],
  ["a lone surrogate", "Lakeside \ud800 Practice"],
  ["a C1 control", "Lakeside \u009b Practice"],
  ["a line break", "Lakeside\nPractice"],
  ["only spaces", "   \u00a0 "],
];

const admin = async () => bearer(await mintToken("platform_admin"));
const post = async (path: string, body: unknown) =>
  SELF.fetch(`https://billing.test${path}`, { method: "POST", headers: { ...(await admin()), "content-type": "application/json" }, body: JSON.stringify(body) });

describe("ingress hygiene: the one text schema (src/http/text.ts)", () => {
  const schema = text({ max: 200 });

  for (const [what, value] of hostile) {
    it(`refuses ${what}`, () => {
      const result = schema.safeParse(value);
      expect(result.success).toBe(false);
      // The message names the rule, never the value.
      if (value.trim() !== "") for (const issue of result.error!.issues) expect(issue.message).not.toContain(value.trim());
    });
  }

  it("normalizes (NFC) and trims what it accepts, and keeps scripts that need joiners", () => {
    expect(schema.parse("  Cafe\u0301 Clinic ")).toBe("Caf\u00e9 Clinic");
    expect(schema.parse("Smith & Jones Family Practice, LLC")).toBe("Smith & Jones Family Practice, LLC");
    expect(schema.parse("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 Clinic")).toContain("\u200c");
    expect(schema.parse("医療法人 さくらクリニック")).toBe("医療法人 さくらクリニック");
    // Length counts the normalized value.
    expect(text({ max: 5 }).safeParse("Cafe\u0301").success).toBe(true);
    expect(text({ min: 0, max: 50, multiline: true }).parse("Line one\nLine two\ttabbed")).toBe("Line one\nLine two\ttabbed");
    expect(text({ min: 0, max: 50, multiline: true }).safeParse("Line\u0000").success).toBe(false);
  });
});

describe("ingress hygiene over the API", () => {
  for (const [what, value] of hostile) {
    it(`POST /v1/offices refuses a legal name with ${what}, storing nothing and echoing nothing`, async () => {
      const { planId } = await seedPlan(testDb());
      // Letters only: a run of digits in the e-mail would read as a record number to the PHI guard.
      const marker = `billing-${crypto.randomUUID().slice(0, 8).replace(/\d/g, (d) => "ghijklmnop"[Number(d)]!)}@hygiene.example`;
      const res = await post("/v1/offices", { legalName: value, billingEmail: marker, timeZone: "America/New_York", billingAnchorDay: 1, planId });
      const body = await expectProblem(res, 400, "VALIDATION_FAILED");
      const errors = body.errors as { path: string }[];
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((e) => e.path === "legalName")).toBe(true);
      if (value.trim() !== "") expect(JSON.stringify(body)).not.toContain(JSON.stringify(value).slice(1, -1));
      expect(await testDb().select().from(offices).where(eq(offices.billingEmail, marker))).toEqual([]);
    });
  }

  it("stores the legal name normalized", async () => {
    const { planId } = await seedPlan(testDb());
    const res = await post("/v1/offices", { legalName: " Cafe\u0301 Family Practice ", billingEmail: "billing@cafe.example", timeZone: "America/New_York", billingAnchorDay: 1, planId });
    expect(res.status, await res.clone().text()).toBe(201);
    const office = (await res.json()) as { id: string };
    const [row] = await testDb().select().from(offices).where(eq(offices.id, office.id));
    expect(row!.legalName).toBe("Caf\u00e9 Family Practice");
  });

  it("refuses hostile text in the billing e-mail, the time zone, a plan's name and a charge's note", async () => {
    const { planId } = await seedPlan(testDb());
    const office = { legalName: "Lakeside", billingEmail: "billing@lakeside.example", timeZone: "America/New_York", billingAnchorDay: 1, planId };
    for (const [field, value] of [
      ["billingEmail", "billing\u200b@lakeside.example"],
      ["billingEmail", "billing@lakeside.example\u0000"],
      ["timeZone", "America/New_York\u202e"],
    ] as const) {
      const body = await expectProblem(await post("/v1/offices", { ...office, [field]: value }), 400, "VALIDATION_FAILED");
      const errors = body.errors as { path: string }[];
      expect(errors.length, `${field} ${JSON.stringify(value)}`).toBeGreaterThan(0);
      expect(errors.every((e) => e.path === field)).toBe(true);
    }
    const version = { currency: "usd", baseFee: 1000, tiers: [{ upTo: null, unitAmount: 500 }] };
    const plan = await expectProblem(await post("/v1/plans", { code: `h-${crypto.randomUUID().slice(0, 8)}`, name: "\u001b[2JStandard", version }), 400, "VALIDATION_FAILED");
    expect(plan.errors).toEqual([expect.objectContaining({ path: "name" })]);
    const seeded = await seedOffice(testDb());
    const charge = await expectProblem(await post(`/v1/offices/${seeded.id}/charges`, { amount: 100, category: "training", mode: "add_to_current", note: "ok\u0000" }), 400, "VALIDATION_FAILED");
    expect(charge.errors).toEqual([expect.objectContaining({ path: "note" })]);
  });

  it("refuses a plan currency Stripe does not support", async () => {
    const version = { currency: "usd", baseFee: 1000, tiers: [{ upTo: null, unitAmount: 500 }] };
    for (const currency of ["zzz", "xxx", "hrk", "USD", "us", "usd "]) {
      const body = await expectProblem(await post("/v1/plans", { code: `c-${crypto.randomUUID().slice(0, 8)}`, name: "Currency", version: { ...version, currency } }), 400, "VALIDATION_FAILED");
      expect(body.errors).toEqual([expect.objectContaining({ path: "version.currency" })]);
    }
    const res = await post("/v1/plans", { code: `c-${crypto.randomUUID().slice(0, 8)}`, name: "Euro", version: { ...version, currency: "eur" } });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(stripeCurrencies).toContain("usd");
    expect(stripeCurrencies).not.toContain("zzz");
  });

  it("refuses the currencies Stripe charges in whole units (zero-decimal, and ISK): two-decimal currencies only", async () => {
    const version = { baseFee: 1000, tiers: [{ upTo: null, unitAmount: 500 }] };
    for (const currency of ["jpy", "krw", "vnd", "clp", "ugx", "xof", "isk"]) {
      const body = await expectProblem(await post("/v1/plans", { code: `c-${crypto.randomUUID().slice(0, 8)}`, name: "Whole", version: { ...version, currency } }), 400, "VALIDATION_FAILED");
      expect(body.errors, currency).toEqual([{ path: "version.currency", message: expect.stringMatching(/two-decimal currencies only/) }]);
    }
    for (const currency of ["gbp", "huf", "twd", "mxn"]) {
      const res = await post("/v1/plans", { code: `c-${crypto.randomUUID().slice(0, 8)}`, name: "Two", version: { ...version, currency } });
      expect(res.status, `${currency}: ${await res.clone().text()}`).toBe(201);
    }
    expect(billableCurrencies).not.toContain("jpy");
    expect(billableCurrencies).toContain("usd");
    for (const z of zeroDecimalCurrencies) expect(stripeCurrencies).toContain(z);
  });
});
