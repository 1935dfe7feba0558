/* Charts of the dashboard on the vendored Chart.js: line charts against wall time (or steps) with
 * stage boundaries drawn as dashed vertical lines and baselines as dotted horizontal ones, zoomed by
 * dragging across them; the sequence-length histogram, and the comparison chart.
 *
 * Charts whose data is in the page declare it: <canvas data-chart="histogram|compare"
 * data-source="<id of a json_script element>">. The job page builds its own through
 * StudioCharts.lineChart (see live-job.js).
 */
(function () {
  "use strict";

  const COLORS = ["#2563eb", "#ea580c", "#16a34a", "#7c3aed", "#db2777"];
  const GRID = "rgba(0, 0, 0, 0.06)";

  // Draws chart.$stageLines = [{x, label, color}] as dashed vertical lines with their label on top.
  const stageLines = {
    id: "stageLines",
    afterDraw(chart) {
      const lines = chart.$stageLines || [];
      if (!lines.length) return;
      const { ctx, chartArea, scales } = chart;
      ctx.save();
      ctx.font = "11px system-ui, sans-serif";
      ctx.textBaseline = "top";
      lines.forEach((line, i) => {
        const px = scales.x.getPixelForValue(line.x);
        if (!Number.isFinite(px) || px < chartArea.left || px > chartArea.right) return;
        ctx.strokeStyle = line.color || "#6b7280";
        ctx.fillStyle = line.color || "#374151";
        ctx.lineWidth = 1;
        ctx.setLineDash([5, 4]);
        ctx.beginPath();
        ctx.moveTo(px, chartArea.top);
        ctx.lineTo(px, chartArea.bottom);
        ctx.stroke();
        ctx.setLineDash([]);
        if (line.label) {
          const width = ctx.measureText(line.label).width;
          const x = px + 4 + width > chartArea.right ? px - 4 - width : px + 4;
          ctx.fillText(line.label, x, chartArea.top + 2 + (line.row ?? i % 2) * 13);
        }
      });
      ctx.restore();
    },
  };

  // Draws chart.$baselines = [{y, label, color}] as dotted horizontal lines, labelled at their right end.
  const baselines = {
    id: "baselines",
    afterDatasetsDraw(chart) {
      const lines = chart.$baselines || [];
      if (!lines.length) return;
      const { ctx, chartArea, scales } = chart;
      ctx.save();
      ctx.font = "11px system-ui, sans-serif";
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      lines.forEach((line) => {
        const py = scales.y.getPixelForValue(line.y);
        if (!Number.isFinite(py) || py < chartArea.top || py > chartArea.bottom) return;
        ctx.strokeStyle = line.color || "#6b7280";
        ctx.fillStyle = line.color || "#374151";
        ctx.lineWidth = 1.5;
        ctx.setLineDash([2, 3]);
        ctx.beginPath();
        ctx.moveTo(chartArea.left, py);
        ctx.lineTo(chartArea.right, py);
        ctx.stroke();
        ctx.setLineDash([]);
        if (line.label) ctx.fillText(line.label, chartArea.right - 4, py - 2);
      });
      ctx.restore();
    },
  };

  // Shades the x range being dragged out for a zoom: chart.$selection = {from, to} in pixels.
  const selection = {
    id: "selection",
    afterDraw(chart) {
      const range = chart.$selection;
      if (!range) return;
      const { ctx, chartArea } = chart;
      const left = Math.max(chartArea.left, Math.min(range.from, range.to));
      const right = Math.min(chartArea.right, Math.max(range.from, range.to));
      ctx.save();
      ctx.fillStyle = "rgba(37, 99, 235, 0.12)";
      ctx.fillRect(left, chartArea.top, right - left, chartArea.bottom - chartArea.top);
      ctx.restore();
    },
  };

  function lineChart(canvas, { datasets, yTitle, yMin, xTitle, legend }) {
    const chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: datasets.map((d, i) => ({
          label: d.label,
          data: d.data || [],
          borderColor: d.color || COLORS[i % COLORS.length],
          backgroundColor: d.color || COLORS[i % COLORS.length],
          borderWidth: 2,
          // Dots only while a line is short enough to need them (a single point has no line).
          pointRadius: d.pointRadius ?? ((context) => (context.dataset.data.length < 20 ? 2 : 0)),
          pointHoverRadius: 4,
          tension: 0,
          spanGaps: true,
        })),
      },
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false, axis: "x" },
        scales: {
          x: {
            type: "linear",
            min: 0,
            title: { display: true, text: xTitle || "wall time (s)" },
            grid: { color: GRID },
          },
          y: {
            title: { display: Boolean(yTitle), text: yTitle || "" },
            grid: { color: GRID },
            ...(yMin === undefined ? {} : { min: yMin }),
          },
        },
        plugins: {
          legend: { display: legend ?? datasets.length > 1, position: "bottom" },
          tooltip: {
            callbacks: {
              // chart.$xLabel(x) where the x axis is not seconds (the job page's steps)
              title: (items) => {
                if (!items.length) return "";
                const { chart: owner, parsed } = items[0];
                return owner.$xLabel ? owner.$xLabel(parsed.x) : `${parsed.x.toFixed(1)} s`;
              },
              label: (item) => `${item.dataset.label}: ${item.parsed.y.toFixed(4)}`,
            },
          },
        },
      },
      plugins: [stageLines, baselines, selection],
    });
    chart.$stageLines = [];
    chart.$baselines = [];
    return chart;
  }

  // The exponential moving average of points [{x, y}] with ``weight`` on the past (0: the points
  // themselves), bias-corrected as TensorBoard's smoothing is, so the first points are not pulled to 0.
  function smooth(points, weight) {
    if (!weight) return points;
    let average = 0;
    return points.map((p, i) => {
      average = weight * average + (1 - weight) * p.y;
      return { x: p.x, y: average / (1 - weight ** (i + 1)) };
    });
  }

  // Drag across any of ``charts`` to zoom all of them to that x range (they share their x axis);
  // onZoom(zoomed) is told whenever the range changes. Returns reset(), which shows everything again.
  function dragZoom(charts, onZoom) {
    const MIN_DRAG_PX = 6; // a click or a tap is not a zoom
    const defaults = charts.map((c) => ({ min: c.options.scales.x.min, max: c.options.scales.x.max }));

    function setRange(min, max) {
      charts.forEach((c, i) => {
        c.options.scales.x.min = min ?? defaults[i].min;
        c.options.scales.x.max = max ?? defaults[i].max;
        c.update("none");
      });
      onZoom(min !== undefined);
    }

    charts.forEach((chart) => {
      const canvas = chart.canvas;
      let start = null;
      canvas.addEventListener("pointerdown", (event) => {
        const area = chart.chartArea;
        if (event.button !== 0 || event.offsetX < area.left || event.offsetX > area.right) return;
        start = event.offsetX;
        canvas.setPointerCapture(event.pointerId);
      });
      canvas.addEventListener("pointermove", (event) => {
        if (start === null) return;
        chart.$selection = { from: start, to: event.offsetX };
        chart.draw();
      });
      const finish = (event) => {
        if (start === null) return;
        const from = Math.min(start, event.offsetX);
        const to = Math.max(start, event.offsetX);
        start = null;
        chart.$selection = null;
        chart.draw();
        if (event.type !== "pointerup" || to - from < MIN_DRAG_PX) return;
        const x = chart.scales.x;
        setRange(x.getValueForPixel(from), x.getValueForPixel(to));
      };
      canvas.addEventListener("pointerup", finish);
      canvas.addEventListener("pointercancel", finish);
    });
    return () => setRange(undefined, undefined);
  }

  function histogram(canvas, bins) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: bins.map((b) => (b.lo === b.hi ? String(b.lo) : `${b.lo}–${b.hi}`)),
        datasets: [{ label: "sequences", data: bins.map((b) => b.count), backgroundColor: COLORS[0] }],
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: "events per sequence" }, grid: { display: false } },
          y: { title: { display: true, text: "sequences" }, beginAtZero: true, grid: { color: GRID } },
        },
        plugins: { legend: { display: false } },
      },
    });
  }

  // The depth a stage boundary leads to: the blocks of the run's first point after it.
  function boundaries(stageEnds, curve, color, prefix, row) {
    return stageEnds
      .map((end) => {
        const next = curve.find((p) => p.t > end.t && p.blocks !== end.blocks);
        return next ? { x: end.t, label: `${prefix}${next.blocks} blocks`, color, row } : null;
      })
      .filter(Boolean);
  }

  function compare(canvas, data) {
    const runs = data.runs || [];
    const chart = lineChart(canvas, {
      yTitle: `validation ${String(data.metric || "").toUpperCase()}`,
      datasets: runs.map((run, i) => ({
        label: run.label,
        color: COLORS[i],
        pointRadius: 2,
        data: run.curve.map((p) => ({ x: p.t, y: p.value })),
      })),
    });
    chart.$stageLines = runs.flatMap((run, i) =>
      boundaries(run.stage_ends || [], run.curve || [], COLORS[i], runs.length > 1 ? `${"AB"[i]}: ` : "", i),
    );
    chart.options.plugins.legend.display = true;
    chart.update("none");
    return chart;
  }

  function readJson(id) {
    const element = id && document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  // Build the declared charts not built yet (on load, and after htmx swapped content in).
  function init(root) {
    root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      if (canvas.$chart) return;
      const data = readJson(canvas.dataset.source);
      if (data === null) return;
      if (canvas.dataset.chart === "histogram") canvas.$chart = histogram(canvas, data);
      else if (canvas.dataset.chart === "compare") canvas.$chart = compare(canvas, data);
    });
  }

  window.StudioCharts = { COLORS, lineChart, histogram, compare, stageLines, smooth, dragZoom };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init(document));
  else init(document);
  document.addEventListener("htmx:afterSettle", () => init(document));
})();
