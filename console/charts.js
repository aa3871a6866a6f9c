// @ts-check
// Charts through Chart.js (its prebuilt UMD bundle, served from the chart.js package at
// /console/assets/chart.umd.min.js; it defines window.Chart). No animation: a chart is drawn
// when created (and screenshots and tests see it at once).

const PALETTE = ["#1f6feb", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e"];
const charts = new WeakMap();

/**
 * Draws a chart into a fresh canvas inside `box` (`data-points` says how many values it shows).
 * @param {HTMLElement} box
 * @param {{ type: string, labels: string[], datasets: ({ label: string, data: (number | null)[] } & Record<string, unknown>)[], stacked?: boolean, yTitle?: string }} chart
 */
export function drawChart(box, { type, labels, datasets, stacked = false, yTitle }) {
  // Chart.js's UMD bundle defines it (untyped here: the console does not type-check Chart.js's options).
  const Chart = /** @type {any} */ (globalThis).Chart;
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", box.getAttribute("aria-label") ?? "chart");
  box.replaceChildren(canvas);
  box.dataset.points = String(datasets.reduce((n, d) => n + d.data.length, 0));
  if (!Chart) {
    box.replaceChildren(document.createTextNode("The charting library did not load."));
    return null;
  }
  charts.get(box)?.destroy();
  const chart = new Chart(canvas, {
    type,
    data: {
      labels,
      datasets: datasets.map((d, i) => ({
        borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: type === "line" ? PALETTE[i % PALETTE.length] + "33" : PALETTE[i % PALETTE.length],
        tension: 0,
        spanGaps: false,
        fill: type === "line",
        ...d,
      })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: datasets.length > 1 || Boolean(datasets[0]?.label) } },
      scales: {
        x: { stacked },
        y: { stacked, beginAtZero: true, title: { display: Boolean(yTitle), text: yTitle } },
      },
    },
  });
  charts.set(box, chart);
  return chart;
}
