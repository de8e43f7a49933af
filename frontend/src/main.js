// Strata's single browser bundle: htmx for server-driven partials, Alpine.js for small
// local state, ECharts for charts. Everything is bundled — no CDN at run time.
import htmx from "htmx.org";
import Alpine from "alpinejs";
import * as echarts from "echarts";
import { segmentBuilder } from "./segment-builder.js";

window.htmx = htmx;
window.Alpine = Alpine;
window.echarts = echarts;

// Django's CSRF token rides on every htmx request (read from the <meta> in base.html).
document.addEventListener("htmx:configRequest", (event) => {
  const token = document.querySelector('meta[name="csrf-token"]');
  if (token) event.detail.headers["X-CSRFToken"] = token.content;
});

// <div data-chart='{"option": {...}}'> renders an ECharts chart; re-run after htmx swaps.
function renderCharts(root) {
  root.querySelectorAll("[data-chart]").forEach((el) => {
    const chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
    chart.setOption(JSON.parse(el.dataset.chart).option);
  });
}
document.addEventListener("DOMContentLoaded", () => renderCharts(document));
document.addEventListener("htmx:afterSwap", (event) => renderCharts(event.target));
window.addEventListener("resize", () =>
  document.querySelectorAll("[data-chart]").forEach((el) => echarts.getInstanceByDom(el)?.resize()),
);

// A page whose content waits on a background run (inside [data-reload-when-done]) loads
// again once the run's progress element reports it finished, to show the results.
document.addEventListener("htmx:afterSettle", () => {
  const run = document.querySelector('[data-reload-when-done] [data-testid="task-run"]');
  if (run && ["succeeded", "failed"].includes(run.dataset.status)) window.location.reload();
});

Alpine.data("segmentBuilder", segmentBuilder);
Alpine.start();
