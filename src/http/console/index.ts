import type { Context } from "hono";
import type { App, AppEnv } from "../context";
import INDEX from "../../../console/index.html";
import CSS from "../../../console/console.css";
import APP from "../../../console/app.js";
import API from "../../../console/api.js";
import CHARTS from "../../../console/charts.js";
import DOM from "../../../console/dom.js";
import OFFICE from "../../../console/office.js";
import OFFICES from "../../../console/offices.js";
import PORTFOLIO from "../../../console/portfolio.js";
import PORTFOLIO_DATA from "../../../console/portfolio-data.js";
// Chart.js's prebuilt UMD bundle (MIT), straight from the chart.js package.
import CHART_JS from "../../../node_modules/chart.js/dist/chart.umd.min.js";
// openapi-fetch's ESM build (MIT; no imports of its own): the console's typed API client. A text
// module like the others, but TypeScript finds the package's own declarations beside the file (its
// function): the import is the file's text.
import OPENAPI_FETCH_MODULE from "../../../node_modules/openapi-fetch/dist/index.mjs";
const OPENAPI_FETCH = OPENAPI_FETCH_MODULE as unknown as string;

const JS = "text/javascript; charset=utf-8";

/** The console's files by name, bundled into the Worker as text (no build step, no assets directory). */
export const CONSOLE_FILES: Record<string, { body: string; type: string }> = {
  "console.css": { body: CSS, type: "text/css; charset=utf-8" },
  "app.js": { body: APP, type: JS },
  "api.js": { body: API, type: JS },
  "charts.js": { body: CHARTS, type: JS },
  "dom.js": { body: DOM, type: JS },
  "office.js": { body: OFFICE, type: JS },
  "offices.js": { body: OFFICES, type: JS },
  "portfolio.js": { body: PORTFOLIO, type: JS },
  "portfolio-data.js": { body: PORTFOLIO_DATA, type: JS },
  "chart.umd.min.js": { body: CHART_JS, type: JS },
  // As published, less its source-map comment (the map is not served).
  "openapi-fetch.js": { body: OPENAPI_FETCH.replace(/\n\/\/# sourceMappingURL=\S*\s*$/, "\n"), type: JS },
};

/**
 * The console's policy: scripts and styles from this origin only (no inline script or style
 * element; Chart.js sizes its canvas through the CSSOM, which style-src does not govern), API
 * calls to this origin only, no framing. Links to Stripe's hosted pages open as top-level
 * navigations, which the policy does not restrict.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * The billing console (docs/console.md): `/console` and its files under `/console/assets/`. It
 * holds no data of its own: every figure comes from the API with the user's bearer token.
 */
export function registerConsole(app: App) {
  const page = (c: Context<AppEnv>) => {
    c.header("Content-Security-Policy", CONSOLE_CSP);
    c.header("Cache-Control", "no-cache");
    return c.html(INDEX);
  };
  app.get("/console", page);
  app.get("/console/", page);
  app.get("/console/assets/:file", (c) => {
    const file = CONSOLE_FILES[c.req.param("file")];
    if (!file) return c.notFound();
    c.header("Content-Security-Policy", CONSOLE_CSP);
    c.header("Cache-Control", "no-cache");
    return c.body(file.body, 200, { "content-type": file.type });
  });
}
