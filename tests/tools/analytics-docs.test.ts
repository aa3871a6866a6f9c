import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { MonthSchema } from "../../src/http/analytics/platform-analytics";
import { datasets } from "../../src/exports/datasets";

const docs = readFileSync(join(resolve(__dirname, "../.."), "docs/analytics.md"), "utf8");

describe("docs/analytics.md", () => {
  it("defines every platform figure the API answers, each with its SQL (a table row: figure | sentence | SQL)", () => {
    const rows = docs.split("\n").filter((l) => l.startsWith("| `"));
    for (const key of Object.keys(MonthSchema.shape).filter((k) => k !== "month" && k !== "currency")) {
      const row = rows.find((r) => new RegExp("^\\| [^|]*`" + key + "`").test(r));
      expect(row, key).toBeTruthy();
      const [, sentence = "", sqlCell = ""] = row!.split(" | ");
      expect(sentence.length, `${key} has a sentence`).toBeGreaterThan(20);
      expect(sqlCell, `${key} has its SQL (or the formula over other figures)`).toMatch(/^`[^`]+`/);
    }
  });

  it("lists every export dataset's columns as the code writes them", () => {
    for (const [name, d] of Object.entries(datasets)) expect(docs, name).toContain(`| \`${name}\` | ${d.columns.join(", ")} |`);
  });
});
