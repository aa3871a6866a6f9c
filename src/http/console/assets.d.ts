// The console's files and the charting library's browser bundle are imported as text (wrangler's
// `[[rules]] type = "Text"` in wrangler.toml; vitest-pool-workers reads the same rules).
declare module "*/console/index.html" {
  const text: string;
  export default text;
}
declare module "*/console/console.css" {
  const text: string;
  export default text;
}
declare module "*/console/app.js" {
  const text: string;
  export default text;
}
declare module "*/console/api.js" {
  const text: string;
  export default text;
}
declare module "*/console/charts.js" {
  const text: string;
  export default text;
}
declare module "*/console/dom.js" {
  const text: string;
  export default text;
}
declare module "*/console/office.js" {
  const text: string;
  export default text;
}
declare module "*/console/offices.js" {
  const text: string;
  export default text;
}
declare module "*/console/portfolio.js" {
  const text: string;
  export default text;
}
declare module "*/console/portfolio-data.js" {
  const text: string;
  export default text;
}
declare module "*/chart.js/dist/chart.umd.min.js" {
  const text: string;
  export default text;
}
