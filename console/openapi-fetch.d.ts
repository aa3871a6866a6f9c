// The types of ./openapi-fetch.js, which the Worker serves from the openapi-fetch package's ESM
// build (node_modules/openapi-fetch/dist/index.mjs): for `tsc -p tsconfig.clients.json` only.
export * from "openapi-fetch";
export { default } from "openapi-fetch";
