/* The job page, live: poll GET /api/v1/jobs/<id>/curve?after=<last point id> about once a second
 * while the job is active, append only the new points to the loss and validation charts, and update
 * the status, the stage or phase line, the whole-run bar and the facts from the job's progress.
 * The summary fragment (stage timeline, phases after training, result) is fetched again whenever the
 * progress changed, at most every few seconds; the worker log's tail (its owner's page only) while
 * it is open. Polling stops when the job has finished (after one last fetch of the remaining points).
 *
 * The charts draw against wall time or steps over all stages (#x-axis-toggle), the loss smoothed by
 * an exponential moving average (#smoothing), zoomed by dragging across either chart (#zoom-reset
 * shows all again), with the most-popular baseline as dotted lines on the validation chart.
 * Relative times (<time class="ago" datetime>, and "… ago" titles) are kept current.
 */
(function () {
  "use strict";

  const live = document.getElementById("job-live");
  if (!live || !window.StudioCharts) return;

  const POLL_MS = 1000;
  const RETRY_MS = 5000; // after a network error (server restarting, laptop asleep)
  const SUMMARY_MS = 3000; // the summary fragment at most this often while the progress changes
  const LOG_MS = 5000; // the log's tail while it is open and the job active
  const CLOCK_MS = 30000; // relative times
  const BACKLOG = 1000; // an answer this long means more points are waiting: ask again at once
  const METRICS = [
    ["mrr@5", "MRR@5"],
    ["ndcg@10", "NDCG@10"],
  ];
  const $ = (id) => document.getElementById(id);
  const statusBadge = $("job-status");
  const stageBar = $("stage-progress");
  const phaseBar = $("phase-progress");
  const runBar = $("run-progress");
  const lossCanvas = $("loss-chart");
  const validCanvas = $("valid-chart");
  const smoothing = $("smoothing");
  const zoomReset = $("zoom-reset");
  const logBox = $("job-log");

  const lossChart = StudioCharts.lineChart(lossCanvas, {
    yTitle: "training loss",
    legend: false,
    datasets: [
      { label: "loss", color: StudioCharts.COLORS[0] },
      { label: "loss, unsmoothed", color: "rgba(37, 99, 235, 0.25)", pointRadius: 0 },
    ],
  });
  lossChart.data.datasets[1].borderWidth = 1;
  const validChart = StudioCharts.lineChart(validCanvas, {
    yTitle: "validation",
    datasets: METRICS.map(([, label], i) => ({ label, color: StudioCharts.COLORS[i + 1], pointRadius: 2 })),
  });
  const charts = [lossChart, validChart];
  const resetZoom = StudioCharts.dragZoom(charts, (zoomed) => {
    zoomReset.hidden = !zoomed;
  });

  let last = 0;
  let caughtUp = false; // the points that existed when the page loaded have all been drawn
  let status = live.dataset.status;
  let totalStages = 0;
  let axis = "time";
  let summaryKey = null; // what the summary fragment was last fetched for
  let summaryAt = 0;
  let summaryTimer = null;
  // Every point as it came, so the charts can be drawn again against another axis or smoothing.
  const lossPoints = []; // {t, stage, step, y}
  const validPoints = METRICS.map(() => []);
  const stageEnds = []; // {t, stage, step}
  const stageBlocks = {}; // stage number → its depth
  const stageSteps = {}; // stage number → its last step seen (its steps once it ended)

  function addPoints(points) {
    for (const p of points) {
      if (!(p.stage in stageBlocks)) stageBlocks[p.stage] = p.blocks;
      stageSteps[p.stage] = Math.max(stageSteps[p.stage] || 0, p.step);
      const at = { t: p.wall_s, stage: p.stage, step: p.step };
      // Validation points carry the training loss at that moment too: short runs have few loss points.
      if ((p.kind === "loss" || p.kind === "valid") && p.loss !== null) lossPoints.push({ ...at, y: p.loss });
      if (p.kind === "valid" && p.metrics) {
        METRICS.forEach(([key], i) => {
          if (key in p.metrics) validPoints[i].push({ ...at, y: p.metrics[key] });
        });
      } else if (p.kind === "stage") {
        stageEnds.push(at);
      }
    }
  }

  // Steps over all stages: a stage's steps count from the end of the stages before it.
  function stepOffset(stage) {
    let offset = 0;
    for (let s = 1; s < stage; s += 1) offset += stageSteps[s] || 0;
    return offset;
  }

  function xOf(point) {
    return axis === "steps" ? stepOffset(point.stage) + point.step : point.t;
  }

  // A boundary for every stage end but the run's last, labelled with the depth it stacked to.
  function boundaries() {
    return stageEnds
      .filter((end) => !totalStages || end.stage < totalStages)
      .map((end) => {
        const next = stageBlocks[end.stage + 1];
        return { x: xOf(end), label: next ? `→ ${next} blocks` : "stacking…" };
      });
  }

  function redraw() {
    const loss = lossPoints.map((p) => ({ x: xOf(p), y: p.y }));
    const weight = Number(smoothing.value);
    lossChart.data.datasets[0].data = StudioCharts.smooth(loss, weight);
    lossChart.data.datasets[1].data = weight ? loss : [];
    validPoints.forEach((points, i) => {
      validChart.data.datasets[i].data = points.map((p) => ({ x: xOf(p), y: p.y }));
    });
    const lines = boundaries();
    charts.forEach((chart) => {
      chart.$stageLines = lines;
      chart.options.scales.x.title.text = axis === "steps" ? "steps, over all stages" : "wall time (s)";
      chart.$xLabel = axis === "steps" ? (x) => `step ${count(x)}` : null;
      chart.update("none");
    });
    lossCanvas.dataset.points = String(lossPoints.length);
    validCanvas.dataset.points = String(validPoints[0].length);
  }

  // The most-popular baseline on the validation cases: known from the run's start (or, for runs
  // that did not record it then, from its final metrics).
  function showBaseline(job) {
    const p = job.progress || {};
    const popularity = p.popularity || ((job.metrics || {}).popularity || {}).valid;
    if (!popularity || validCanvas.dataset.baseline === "true") return;
    validChart.$baselines = METRICS.filter(([key]) => key in popularity).map(([key, label]) => {
      const i = METRICS.findIndex(([k]) => k === key);
      return { y: popularity[key], label: `most popular, ${label} ${popularity[key].toFixed(4)}`, color: StudioCharts.COLORS[i + 1] };
    });
    const values = validChart.$baselines.map((line) => line.y);
    validChart.options.scales.y.suggestedMin = Math.min(...values);
    validChart.options.scales.y.suggestedMax = Math.max(...values);
    validCanvas.dataset.baseline = "true";
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

  function runningPhase(job) {
    const phases = (job.progress || {}).phases || [];
    return job.finished ? null : phases.find((phase) => phase.state === "running") || null;
  }

  function showState(job) {
    const p = job.progress || {};
    totalStages = p.stages || totalStages;
    statusBadge.dataset.status = job.status;
    statusBadge.className = `badge status-${job.status.toLowerCase()}`;
    statusBadge.textContent = job.status_label;
    live.dataset.status = job.status;
    live.dataset.active = String(!job.finished);
    const phase = runningPhase(job);
    $("stage-line").hidden = Boolean(phase);
    $("phase-line").hidden = !phase;
    if (phase) {
      text("phase-name", phase.name);
      if (phase.total) phaseBar.value = (100 * Math.min(phase.done || 0, phase.total)) / phase.total;
      else phaseBar.removeAttribute("value"); // indeterminate: the phase counts nothing
      text("phase-count", phase.total ? `${count(phase.done || 0)} of ${count(phase.total)} ${phase.unit || ""}` : phase.note || "");
    }
    if (p.planned_steps) {
      stageBar.max = p.planned_steps;
      stageBar.value = Math.min(p.step || 0, p.planned_steps);
      text("stage-steps", `step ${count(p.step || 0)} of ${count(p.planned_steps)}`);
    }
    // The worker works the whole run's percent out from its plan (webapp.training.progress); a
    // finished run is whole, and a row without a plan keeps what the server rendered.
    const percent = job.status === "SUCCEEDED" ? 100 : p.run_percent;
    if (typeof percent === "number") {
      runBar.value = percent;
      text("run-percent", `${Math.floor(percent)} %`); // 99.6 % is not done yet
    }
    text("stage-number", p.stage || "–");
    text("stage-count", p.stages || "–");
    text("fact-blocks", p.blocks || "–");
    text("fact-epoch", p.stage ? `${count(p.epoch)}${p.epochs ? ` of ${count(p.epochs)}` : ""}` : "–");
    text("fact-loss", fixed(p.loss, 4));
    text("fact-eta", job.finished || phase ? "–" : duration(p.stage_eta_s));
    text("fact-run-eta", job.finished || phase ? "–" : duration(p.run_eta_s));
    text("fact-elapsed", duration(p.elapsed_s));
    text("fact-mrr", fixed((p.metrics || {})["mrr@5"], 4));
    text("fact-ndcg", fixed((p.metrics || {})["ndcg@10"], 4));
    text("fact-speed", count(p.positions_per_s));
  }

  // What the summary fragment shows of the progress: when it changes, the fragment is stale.
  function progressKey(job) {
    const p = job.progress || {};
    const phases = (p.phases || []).map((phase) => `${phase.state}:${phase.done ?? ""}`);
    return JSON.stringify([job.status, p.stage, p.step, (p.finished_stages || []).length, phases, job.version]);
  }

  function fetchSummary() {
    summaryTimer = null;
    summaryAt = Date.now();
    fetch(live.dataset.summaryUrl, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const old = $("job-summary");
        // The reader's choice of columns outlives the swap.
        const wide = old.querySelector(".show-columns")?.checked;
        old.outerHTML = html;
        const toggle = $("job-summary").querySelector(".show-columns");
        if (toggle && wide) toggle.checked = true;
      })
      .catch(() => {});
  }

  function refreshSummary(job) {
    const key = progressKey(job);
    if (key === summaryKey) return;
    summaryKey = key;
    if (summaryTimer !== null) return; // one is due already and will fetch the newest
    summaryTimer = setTimeout(fetchSummary, Math.max(0, summaryAt + SUMMARY_MS - Date.now()));
  }

  function refreshLog() {
    if (!logBox || !logBox.open) return;
    fetch(logBox.dataset.logUrl, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const tail = $("job-log-tail");
        const pre = tail.querySelector("pre");
        const following = !pre || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        tail.outerHTML = html;
        const fresh = $("job-log-tail").querySelector("pre");
        if (fresh && following) fresh.scrollTop = fresh.scrollHeight;
      })
      .catch(() => {});
  }

  // "3 minutes ago", as Django's timesince words it (its largest unit, and the next one).
  function ago(then) {
    const seconds = (Date.now() - then) / 1000;
    if (seconds < 60) return "just now";
    const units = [
      ["year", 365 * 86400],
      ["month", 30 * 86400],
      ["week", 7 * 86400],
      ["day", 86400],
      ["hour", 3600],
      ["minute", 60],
    ];
    const i = units.findIndex(([, size]) => seconds >= size);
    const words = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
    const first = Math.floor(seconds / units[i][1]);
    const rest = i + 1 < units.length ? Math.floor((seconds - first * units[i][1]) / units[i + 1][1]) : 0;
    return `${words(first, units[i][0])}${rest ? `, ${words(rest, units[i + 1][0])}` : ""} ago`;
  }

  function refreshClocks() {
    document.querySelectorAll("time[datetime]").forEach((element) => {
      const then = Date.parse(element.getAttribute("datetime"));
      if (Number.isNaN(then)) return;
      if (element.classList.contains("ago")) element.textContent = ago(then);
      else if (element.title.endsWith(" ago")) element.title = ago(then);
    });
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
    showBaseline(job);
    addPoints(data.points);
    last = data.last;
    redraw();
    if (summaryKey === null) summaryKey = progressKey(job); // the page was rendered with this progress
    // Until the points from before the page loaded are drawn, the progress is the page's own.
    if (caughtUp || job.status !== status) refreshSummary(job);
    if (job.finished && status !== job.status) refreshLog();
    status = job.status;
    if (job.finished) {
      // The API may answer in pages: fetch until nothing is left, then stop.
      if (data.points.length) setTimeout(poll, 0);
      else if (!lossPoints.length && !validPoints[0].length) text("curve-note", "This run recorded no curve points.");
      return;
    }
    const backlog = data.points.length >= BACKLOG;
    caughtUp = caughtUp || !backlog;
    setTimeout(poll, backlog ? 0 : POLL_MS);
  }

  document.querySelectorAll('input[name="x-axis"]').forEach((radio) => {
    radio.addEventListener("change", () => {
      axis = radio.value;
      resetZoom(); // a range of seconds means nothing in steps
      redraw();
    });
  });
  smoothing.addEventListener("input", () => {
    text("smoothing-value", Number(smoothing.value).toFixed(2));
    redraw();
  });
  zoomReset.addEventListener("click", resetZoom);
  if (logBox) {
    logBox.addEventListener("toggle", refreshLog);
    setInterval(() => {
      if (live.dataset.active === "true") refreshLog();
    }, LOG_MS);
  }
  setInterval(refreshClocks, CLOCK_MS);
  refreshClocks();
  poll();
})();
