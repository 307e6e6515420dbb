// The time-series chart of observations (uPlot, fast on long series such as a month of CGM
// readings): one line per numeric measurement, resized with its container.
import uPlot from "/vendor/uplot@1.6.32/uPlot.esm.js";

// The chart's stylesheet, added to the page the first time a chart is drawn.
if (!document.querySelector('link[data-uplot]')) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "/vendor/uplot@1.6.32/uPlot.min.css";
  link.dataset.uplot = "";
  document.head.append(link);
}
import { numericValues } from "./omh.js";

const COLORS = ["#0d6efd", "#d63384", "#198754", "#fd7e14"];

/**
 * The series of `points` (`[{time: ms, body}]`, any order): x in seconds and one array per
 * numeric measurement, plus per-measurement statistics.
 */
export function seriesOf(points) {
  const sorted = points.filter((p) => Number.isFinite(p.time)).sort((a, b) => a.time - b.time);
  const defs = new Map();
  const rows = sorted.map((p) => {
    const values = numericValues(p.body);
    for (const v of values) if (!defs.has(v.key)) defs.set(v.key, { key: v.key, label: v.label, unit: v.unit });
    return values;
  });
  const keys = [...defs.keys()];
  const x = Float64Array.from(sorted, (p) => p.time / 1000);
  const ys = keys.map((key) => rows.map((values) => values.find((v) => v.key === key)?.value ?? null));
  const stats = keys.map((key, i) => {
    const nums = ys[i].filter((v) => v !== null);
    const sum = nums.reduce((a, b) => a + b, 0);
    return {
      ...defs.get(key),
      count: nums.length,
      min: nums.length ? Math.min(...nums) : null,
      max: nums.length ? Math.max(...nums) : null,
      mean: nums.length ? Math.round((sum / nums.length) * 10) / 10 : null,
    };
  });
  return { x, ys, stats };
}

/** Draws the chart into `el`; it follows the element's width until `signal` aborts. */
export function drawChart(el, { x, ys, stats }, signal) {
  const unit = stats[0]?.unit ?? "";
  const opts = {
    width: Math.max(el.clientWidth, 300),
    height: 320,
    series: [
      {},
      ...stats.map((s, i) => ({
        label: `${s.label}${s.unit ? ` (${s.unit})` : ""}`,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        spanGaps: false,
      })),
    ],
    axes: [{}, { label: unit, size: 60 }],
    // A single point gets an hour either side instead of a degenerate range.
    scales: { x: { time: true, ...(x.length === 1 ? { range: [x[0] - 3600, x[0] + 3600] } : {}) } },
    cursor: { drag: { x: true, y: false } },
  };
  const plot = new uPlot(opts, [x, ...ys], el);
  const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 300), height: 320 }));
  resize.observe(el);
  signal.addEventListener("abort", () => {
    resize.disconnect();
    plot.destroy();
  });
  return plot;
}
