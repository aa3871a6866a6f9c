import type { App } from "../context";
import { openApiDocument } from "./openapi";

/** Swagger UI's files, served from the Worker's static assets (the swagger-ui-dist package). */
const UI_FILES: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const DOCS_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Office billing API — reference</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="reference"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#reference",
  deepLinking: true,
  displayOperationId: false,
  defaultModelsExpandDepth: 0,
  docExpansion: "list",
  tryItOutEnabled: false,
  persistAuthorization: false,
});
`;

/**
 * The API reference: `/openapi.json` (OpenAPI 3.1, generated from the routes' zod schemas) and
 * `/docs`, Swagger UI served by the Worker itself (its files from the static assets), so the
 * reference works with no network beyond this API.
 */
export function registerDocs(app: App) {
  app.get("/openapi.json", (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.json(openApiDocument(app));
  });
  app.get("/docs", (c) => {
    c.header("Content-Security-Policy", DOCS_CSP);
    c.header("Cache-Control", "public, max-age=300");
    return c.html(PAGE);
  });
  app.get("/docs/init.js", (c) => {
    c.header("Cache-Control", "public, max-age=300");
    return c.body(INIT, 200, { "content-type": "text/javascript; charset=utf-8" });
  });
  app.get("/docs/assets/:file", async (c) => {
    const file = c.req.param("file");
    const type = UI_FILES[file];
    if (!type || !c.env.ASSETS) return c.notFound();
    const asset = await c.env.ASSETS.fetch(new URL(`/${file}`, c.req.url));
    if (!asset.ok) return c.notFound();
    return new Response(asset.body, { status: 200, headers: { "content-type": type, "cache-control": "public, max-age=86400", "x-request-id": c.var.requestId } });
  });
}
