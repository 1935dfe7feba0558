/* The compare page's chart: one validation curve per run against wall time, each in the colour of
 * its swatch in the figures table (the stylesheet's .swatch.series-N), its stage ends dashed.
 *
 * <canvas data-chart="runs" data-source="<id of the comparison's json_script>"> on the page;
 * the lines are drawn by StudioCharts.lineChart (charts.js).
 */
(function () {
  "use strict";

  function colorOf(job, i) {
    const swatch = document.querySelector(`#run-figures tr[data-job="${job}"] .swatch`);
    const color = swatch ? getComputedStyle(swatch).backgroundColor : "";
    const painted = color && color !== "transparent" && color !== "rgba(0, 0, 0, 0)";
    return painted ? color : window.StudioCharts.COLORS[i % window.StudioCharts.COLORS.length];
  }

  // The depth a stage end leads to: the blocks of the run's first point after it.
  function stageEnds(run, color, prefix, row) {
    const curve = run.curve || [];
    return (run.stage_ends || [])
      .map((end) => {
        const next = curve.find((p) => p.t > end.t && p.blocks !== end.blocks);
        return next ? { x: end.t, label: `${prefix}${next.blocks} blocks`, color, row } : null;
      })
      .filter(Boolean);
  }

  function runsChart(canvas, data) {
    const runs = data.runs || [];
    const colors = runs.map((run, i) => colorOf(run.job, i));
    const chart = window.StudioCharts.lineChart(canvas, {
      yTitle: `validation ${String(data.metric || "").toUpperCase()}`,
      datasets: runs.map((run, i) => ({
        label: run.legend,
        color: colors[i],
        pointRadius: 2,
        data: (run.curve || []).map((p) => ({ x: p.t, y: p.value })),
      })),
    });
    // Labels on up to three rows so the boundaries of neighbouring runs do not print over each other.
    chart.$stageLines = runs.flatMap((run, i) => stageEnds(run, colors[i], `#${run.job}: `, i % 3));
    chart.options.plugins.legend.display = true;
    chart.update("none");
    canvas.dataset.lines = String(runs.length);
    return chart;
  }

  function init() {
    document.querySelectorAll('canvas[data-chart="runs"]').forEach((canvas) => {
      if (canvas.$chart || !window.StudioCharts) return;
      const source = document.getElementById(canvas.dataset.source);
      if (source) canvas.$chart = runsChart(canvas, JSON.parse(source.textContent));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
