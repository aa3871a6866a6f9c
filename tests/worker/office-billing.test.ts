import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { officeObject } from "../../src/office/client";
import { OfficeBilling } from "../../src/office/office-billing";
import { newId } from "../../src/security/request-id";

describe("OfficeBilling Durable Object", () => {
  it("binds to its office on first use and reports itself through the typed client", async () => {
    const officeId = newId("off");
    const info = await officeObject(env, officeId).info();
    expect(info).toEqual({ officeId, operations: 0, lastOperation: null, lastOperationAt: null });
  });

  it("refuses to serve another office than the one it is bound to", async () => {
    const officeId = newId("off");
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
    expect((await stub.info(officeId)).ok).toBe(true);
    expect(await stub.info(newId("off"))).toEqual({
      ok: false,
      error: { code: "CONFLICT", detail: "This office object is bound to a different office." },
    });
  });

  it("uses SQLite storage", async () => {
    const officeId = newId("off");
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
    await stub.info(officeId);
    await runInDurableObject(stub, async (instance, state) => {
      expect(instance).toBeInstanceOf(OfficeBilling);
      const tables = state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray();
      expect(tables.map((t) => t.name)).toContain("office_meta");
    });
  });

  it("runs operations one at a time, even across awaits on I/O, and survives a failing one", async () => {
    const officeId = newId("off");
    const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
    await runInDurableObject(stub, async (instance) => {
      const log: string[] = [];
      const op = (name: string, ms: number, fail = false) =>
        instance["exclusive"](officeId, name, async () => {
          log.push(`start ${name}`);
          await new Promise((r) => setTimeout(r, ms)); // yields the event loop, like a fetch to Turso
          log.push(`end ${name}`);
          if (fail) throw new Error(`${name} failed`);
          return name;
        });
      const results = await Promise.all([op("a", 30), op("b", 1, true), op("c", 10)]);
      expect(results).toEqual([
        { ok: true, value: "a" },
        { ok: false, error: { code: "INTERNAL", detail: "The office operation failed unexpectedly." } },
        { ok: true, value: "c" },
      ]);
      expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
    });
    const info = await officeObject(env, officeId).info();
    expect(info.operations).toBe(3);
    expect(info.lastOperation).toBe("c");
    expect(info.lastOperationAt).toBeGreaterThan(0);
  });
});
