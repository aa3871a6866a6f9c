import { SELF } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { invoiceLines } from "../../src/db/invoices";
import { offices } from "../../src/db/offices";
import { bearer, mintToken } from "../harness/auth";
import { monthlyInvoices, onboardOffice, reportEvent, runInvoicing } from "../harness/billing";
import { expectProblem } from "../harness/problem";
import { testDb } from "../harness/seed";

const api = "https://billing.test/v1/offices";

async function charge(officeId: string, body: Record<string, unknown>) {
  return SELF.fetch(`${api}/${officeId}/charges`, {
    method: "POST",
    headers: { ...bearer(await mintToken("platform_admin")), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}
async function get(path: string, role: "office_admin" | "office_viewer" | "platform_admin" = "office_viewer", officeId?: string) {
  const id = officeId ?? path.split("/")[0]!;
  return SELF.fetch(`${api}/${path}`, { headers: bearer(await mintToken(role, role === "platform_admin" ? [] : [id])) });
}

describe("one-off charges", () => {
  it("adds a line with the category's fixed label to the current invoice; the note stays internal", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    const res = await charge(office, { amount: 15000, category: "training", note: "Dr. Roe asked for a second session", mode: "add_to_current" });
    expect(res.status).toBe(201);
    const { lineId, invoiceId } = (await res.json()) as { lineId: string; invoiceId: string };
    const [draft] = await monthlyInvoices(office);
    expect(invoiceId).toBe(draft!.id);
    expect(draft!.total).toBe(4900 + 15000);
    const line = draft!.lines.find((l) => l.id === lineId)!;
    expect(line).toMatchObject({ kind: "one_off", description: "Training", category: "training", amount: 15000, internalNote: "Dr. Roe asked for a second session" });
    // The API never shows the note.
    const shown = await (await get(`${office}/invoices/${draft!.id}`)).text();
    expect(shown).toContain("Training");
    expect(shown).not.toContain("Dr. Roe");
  });

  it("invoices a charge on its own, finalized at once", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    const { invoiceId } = (await (await charge(office, { amount: 9900, category: "hardware", mode: "invoice_now" })).json()) as { invoiceId: string };
    const invoice = (await (await get(`${office}/invoices/${invoiceId}`)).json()) as { kind: string; status: string; total: number; finalizedAt: string; lines: { description: string }[] };
    expect(invoice).toMatchObject({ kind: "one_off", status: "open", total: 9900, lines: [{ description: "Hardware" }] });
    expect(invoice.finalizedAt).toBeTruthy();
  });

  it("refuses bad charges: unknown category, non-integer or zero amount, free-text description, canceled office", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    for (const body of [
      { amount: 100, category: "consulting", mode: "invoice_now" },
      { amount: 10.5, category: "other", mode: "invoice_now" },
      { amount: 0, category: "other", mode: "invoice_now" },
      { amount: 100, category: "other", mode: "invoice_now", description: "Visit of patient Jane Roe" },
      { amount: 100, category: "other", mode: "later" },
    ]) {
      await expectProblem(await charge(office, body), 400, "VALIDATION_FAILED");
    }
    await testDb().update(offices).set({ status: "canceled" }).where(eq(offices.id, office));
    await expectProblem(await charge(office, { amount: 100, category: "other", mode: "add_to_current" }), 409, "CONFLICT");
    expect(await testDb().select().from(invoiceLines).where(eq(invoiceLines.kind, "one_off"))).not.toContainEqual(expect.objectContaining({ amount: 100, category: "other" }));
  });
});

describe("read API", () => {
  it("shows current-cycle usage: billable patients so far and the projected amount", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    await reportEvent(office, "u1", "activate", "2026-01-02T10:00:00Z");
    await reportEvent(office, "u2", "activate", "2026-01-02T11:00:00Z");
    await charge(office, { amount: 500, category: "other", mode: "add_to_current" });
    const usage = await (await get(`${office}/usage`, "office_admin")).json();
    expect(usage).toEqual({
      officeId: office,
      status: "active",
      cycle: { start: "2026-01-01", end: "2026-02-01" },
      currency: "usd",
      billablePatients: 2,
      projected: { patients: 1600, baseFee: 4900, oneOff: 500, carried: 0, total: 7000 },
    });
  });

  it("lists invoices newest first, filtered and paginated", async () => {
    const office = await onboardOffice({ startsOn: "2026-01-01" });
    await runInvoicing([office], "2026-04-02T00:00:00Z"); // Jan, Feb, Mar closed; Apr draft
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await get(`${office}/invoices?kind=monthly&limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      const page = (await res.json()) as { data: { periodStart: string; status: string }[]; nextCursor: string | null };
      seen.push(...page.data.map((i) => i.periodStart));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual(["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]);
    const open = (await (await get(`${office}/invoices?status=open&periodFrom=2026-02-01`)).json()) as { data: { periodStart: string }[] };
    expect(open.data.map((i) => i.periodStart).sort()).toEqual(["2026-02-01", "2026-03-01"]);
    await expectProblem(await get(`${office}/invoices?status=late`), 400, "VALIDATION_FAILED");
    await expectProblem(await get(`${office}/invoices?cursor=bogus`), 400, "VALIDATION_FAILED");
  });

  it("answers 404 for another office's invoice, even by its id", async () => {
    const mine = await onboardOffice({ startsOn: "2026-01-01" });
    const theirs = await onboardOffice({ startsOn: "2026-01-01" });
    const [theirDraft] = await monthlyInvoices(theirs);
    await expectProblem(await get(`${mine}/invoices/${theirDraft!.id}`, "office_admin", mine), 404, "NOT_FOUND");
    await expectProblem(await get(`${mine}/invoices/inv_00000000000000000000000000000000`, "platform_admin"), 404, "NOT_FOUND");
  });
});
