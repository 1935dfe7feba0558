/* The job page, live: poll GET /api/v1/jobs/<id>/curve?after=<last point id> about once a second
 * while the job is active, append only the new points to the loss and validation charts, update the
 * status and progress bars, and re-fetch the stage timeline fragment when a stage starts or ends or
 * the status changes. Polling stops when the job has finished (after one last fetch of the remaining points).
 */
(function () {
  "use strict";

  const live = document.getElementById("job-live");
  if (!live || !window.StudioCharts) return;

  const POLL_MS = 1000;
  const RETRY_MS = 5000; // after a network error (server restarting, laptop asleep)
  const BACKLOG = 1000; // an answer this long means more points are waiting: ask again at once
  const METRICS = [
    ["mrr@5", "MRR@5"],
    ["ndcg@10", "NDCG@10"],
  ];
  const $ = (id) => document.getElementById(id);
  const statusBadge = $("job-status");
  const stageBar = $("stage-progress");
  const runBar = $("run-progress");
  const lossCanvas = $("loss-chart");
  const validCanvas = $("valid-chart");

  const lossChart = StudioCharts.lineChart(lossCanvas, {
    yTitle: "training loss",
    datasets: [{ label: "loss", color: StudioCharts.COLORS[0] }],
  });
  const validChart = StudioCharts.lineChart(validCanvas, {
    yTitle: "validation",
    datasets: METRICS.map(([, label], i) => ({ label, color: StudioCharts.COLORS[i + 1], pointRadius: 2 })),
  });

  let last = 0;
  let caughtUp = false; // the points that existed when the page loaded have all been drawn
  let status = live.dataset.status;
  let stage = live.dataset.stage; // the stage the timeline was rendered with
  let totalStages = 0;
  let lossPoints = 0;
  let validPoints = 0;
  const stageEnds = []; // [{x, stage}]
  const stageBlocks = {}; // stage number → its depth

  function addPoints(points) {
    for (const p of points) {
      if (!(p.stage in stageBlocks)) stageBlocks[p.stage] = p.blocks;
      // Validation points carry the training loss at that moment too: short runs have few loss points.
      if ((p.kind === "loss" || p.kind === "valid") && p.loss !== null) {
        lossChart.data.datasets[0].data.push({ x: p.wall_s, y: p.loss });
        lossPoints += 1;
      }
      if (p.kind === "valid" && p.metrics) {
        METRICS.forEach(([key], i) => {
          if (key in p.metrics) validChart.data.datasets[i].data.push({ x: p.wall_s, y: p.metrics[key] });
        });
        validPoints += 1;
      } else if (p.kind === "stage") {
        stageEnds.push({ x: p.wall_s, stage: p.stage });
      }
    }
  }

  // A boundary for every stage end but the run's last, labelled with the depth it stacked to.
  function boundaries() {
    return stageEnds
      .filter((end) => !totalStages || end.stage < totalStages)
      .map((end) => {
        const next = stageBlocks[end.stage + 1];
        return { x: end.x, label: next ? `→ ${next} blocks` : "stacking…" };
      });
  }

  function redraw() {
    const lines = boundaries();
    lossChart.$stageLines = lines;
    validChart.$stageLines = lines;
    lossChart.update("none");
    validChart.update("none");
    lossCanvas.dataset.points = String(lossPoints);
    validCanvas.dataset.points = String(validPoints);
  }

  function text(id, value) {
    const element = $(id);
    if (element) element.textContent = value;
  }

  function fixed(value, digits) {
    return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
  }

  function duration(s) {
    if (typeof s !== "number" || !Number.isFinite(s)) return "–";
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
    return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  }

  // A count with thousands separators, as the page's template writes it (studio's ``thousands``).
  function count(value) {
    const n = typeof value === "number" ? value : NaN;
    return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
  }

  // Same arithmetic as webapp.dashboard.selectors.job_run_percent.
  function runPercent(job) {
    if (job.status === "SUCCEEDED") return 100;
    const p = job.progress || {};
    if (!p.stages || !p.stage) return 0;
    const within = p.planned_steps ? Math.min(1, (p.step || 0) / p.planned_steps) : 0;
    return Math.min(100, (100 * (p.stage - 1 + within)) / p.stages);
  }

  function showState(job) {
    const p = job.progress || {};
    totalStages = p.stages || totalStages;
    statusBadge.dataset.status = job.status;
    statusBadge.className = `badge status-${job.status.toLowerCase()}`;
    statusBadge.textContent = job.status_label;
    live.dataset.status = job.status;
    live.dataset.active = String(!job.finished);
    if (p.planned_steps) {
      stageBar.max = p.planned_steps;
      stageBar.value = Math.min(p.step || 0, p.planned_steps);
      text("stage-steps", `step ${count(p.step || 0)} of ${count(p.planned_steps)}`);
    }
    const percent = runPercent(job);
    runBar.value = percent;
    text("run-percent", `${Math.round(percent)} %`);
    text("stage-number", p.stage || "–");
    text("stage-count", p.stages || "–");
    text("fact-blocks", p.blocks || "–");
    text("fact-epoch", p.stage ? count(p.epoch) : "–");
    text("fact-loss", fixed(p.loss, 4));
    text("fact-eta", job.finished ? "–" : duration(p.stage_eta_s));
    text("fact-elapsed", duration(p.elapsed_s));
    text("fact-mrr", fixed((p.metrics || {})["mrr@5"], 4));
    text("fact-ndcg", fixed((p.metrics || {})["ndcg@10"], 4));
    text("fact-speed", count(p.positions_per_s));
  }

  function refreshSummary() {
    const url = live.dataset.summaryUrl;
    if (window.htmx) {
      htmx.ajax("GET", url, { target: "#job-summary", swap: "outerHTML" });
      return;
    }
    fetch(url, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        $("job-summary").outerHTML = html;
      })
      .catch(() => {});
  }

  async function poll() {
    let data;
    try {
      const response = await fetch(`${live.dataset.curveUrl}?after=${last}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        text("curve-note", `Live updates stopped: the server answered ${response.status}. Reload the page to retry.`);
        return;
      }
      data = await response.json();
    } catch (error) {
      setTimeout(poll, RETRY_MS);
      return;
    }
    const job = data.job;
    showState(job);
    addPoints(data.points);
    last = data.last;
    redraw();
    const stageEnded = data.points.some((p) => p.kind === "stage");
    const current = String((job.progress || {}).stage || "");
    const changed = job.status !== status || current !== stage;
    status = job.status;
    stage = current;
    // The page was rendered with the timeline of its time: a new status or stage, or (once the
    // points from before the page loaded are drawn) a stage end, changes it.
    if (changed || (stageEnded && caughtUp)) refreshSummary();
    if (job.finished) {
      // The API may answer in pages: fetch until nothing is left, then stop.
      if (data.points.length) setTimeout(poll, 0);
      else if (!lossPoints && !validPoints) text("curve-note", "This run recorded no curve points.");
      return;
    }
    const backlog = data.points.length >= BACKLOG;
    caughtUp = caughtUp || !backlog;
    setTimeout(poll, backlog ? 0 : POLL_MS);
  }

  poll();
})();
