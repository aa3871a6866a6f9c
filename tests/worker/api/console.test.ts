import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

const base = "https://billing.test";

describe("the billing console's files (/console)", () => {
  it("serves the page under a policy with no inline script or style, and every file it loads", async () => {
    const page = await SELF.fetch(`${base}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = page.headers.get("content-security-policy") ?? "";
    const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
    expect(directives["script-src"]).toEqual(["'self'"]);
    expect(directives["style-src"]).toEqual(["'self'"]);
    expect(directives["connect-src"]).toEqual(["'self'"]);
    expect(directives["default-src"]).toEqual(["'none'"]);
    expect(directives["frame-ancestors"]).toEqual(["'none'"]);
    expect(csp).not.toContain("unsafe");
    const html = await page.text();
    // Every script is a file (no inline code); no style element or attribute; no inline handler.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(2);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/src="\/console\/assets\/[\w.-]+\.js"/);
      expect(body!.trim()).toBe("");
    }
    expect(html).not.toMatch(/<style|style=|\son[a-z]+=/i);

    // The page's files, and every module they import, are served with their types.
    const pending = [...html.matchAll(/(?:src|href)="(\/console\/assets\/[\w.-]+)"/g)].map((m) => m[1]!);
    const seen = new Set<string>();
    while (pending.length > 0) {
      const path = pending.pop()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const res = await SELF.fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type"), path).toBe(path.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8");
      expect(res.headers.get("content-security-policy"), path).toBe(csp);
      const text = await res.text();
      expect(text.length, path).toBeGreaterThan(100);
      if (path.endsWith(".js") && !path.includes("chart.umd")) {
        // No bare module specifier (the browser could not resolve one): every import is a served file.
        expect(text, path).not.toMatch(/\bfrom\s*["'](?!\.\/)/);
        // The console's own code writes text, never HTML, and evaluates nothing.
        expect(text, path).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
        for (const m of text.matchAll(/from "\.\/([\w.-]+\.js)"/g)) pending.push(`/console/assets/${m[1]}`);
      }
    }
    expect([...seen].sort()).toEqual(
      ["api.js", "app.js", "chart.umd.min.js", "charts.js", "console.css", "dom.js", "office.js", "offices.js", "openapi-fetch.js", "portfolio-data.js", "portfolio.js"].map((f) => `/console/assets/${f}`),
    );
    // The charting library is Chart.js's prebuilt browser bundle, from the chart.js package.
    const chart = await (await SELF.fetch(`${base}/console/assets/chart.umd.min.js`)).text();
    expect(chart).toMatch(/Chart\.js v4\.\d+\.\d+/);
    expect(chart.length).toBeGreaterThan(100_000);
    // The API client is openapi-fetch's ESM build (the package's dist/index.mjs), which the console's
    // api.js imports: an ES module exporting createClient, without its source-map comment.
    const client = await (await SELF.fetch(`${base}/console/assets/openapi-fetch.js`)).text();
    expect(client).toMatch(/function createClient\(/);
    expect(client).toMatch(/export \{[^}]*createClient as default/);
    expect(client).not.toContain("sourceMappingURL");
    const api = await (await SELF.fetch(`${base}/console/assets/api.js`)).text();
    expect(api).toContain('import createClient from "./openapi-fetch.js";');
  });

  it("serves nothing else under /console: other names are a problem+json 404", async () => {
    for (const path of ["/console/assets/package.json", "/console/assets/..%2Fwrangler.toml", "/console/app.js", "/console/assets/chart.js"]) {
      const res = await SELF.fetch(`${base}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type"), path).toMatch(/^application\/problem\+json/);
    }
    // The page and its files take no query parameters, like every route.
    expect((await SELF.fetch(`${base}/console?token=x`)).status).toBe(400);
  });
});
