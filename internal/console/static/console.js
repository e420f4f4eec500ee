// Live updates for the Avtomatika console: an element with data-live
// listens on that Server-Sent Events stream and, on each change, reloads
// its content from data-refresh with htmx (at most once per interval, or
// per data-pace milliseconds). Elements of a page that follow the same
// stream share one connection.
// Charts: an element with data-chart (JSON: x in Unix seconds, series of
// values) is drawn with uPlot, in the theme's colours (console.css).
(function () {
  "use strict";

  function cssVar(name) {
    return getComputedStyle(document.body).getPropertyValue("--" + name).trim() || "currentColor";
  }

  function chart(el) {
    if (typeof uPlot === "undefined" || el.getAttribute("data-drawn") === "1") { return; }
    var spec;
    try { spec = JSON.parse(el.getAttribute("data-chart")); } catch (e) { return; }
    el.setAttribute("data-drawn", "1");
    var muted = cssVar("muted"), line = cssVar("line");
    var axis = { stroke: muted, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
    var series = [{}];
    var data = [spec.x || []];
    (spec.series || []).forEach(function (s) {
      var color = cssVar(s.color);
      series.push({ label: s.label, stroke: color, width: 2, spanGaps: false,
        paths: spec.steps ? uPlot.paths.stepped({ align: 1 }) : undefined,
        points: { show: spec.points || (spec.x || []).length < 2, size: 6, fill: color } });
      data.push(s.values || []);
    });
    var y = { auto: true };
    if (spec.min !== undefined && spec.max !== undefined) { y = { range: [spec.min, spec.max] }; }
    var yAxis = Object.assign({}, axis, { label: spec.unit || "", size: 56 });
    var opts = {
      title: spec.title, width: Math.max(240, el.clientWidth || 600), height: el.classList.contains("small") ? 120 : 220,
      series: series, scales: { x: { time: true }, y: y }, axes: [axis, yAxis],
      legend: { show: true }, cursor: { points: { show: false } }
    };
    var plot = new uPlot(opts, data, el);
    el.setAttribute("data-points", String((spec.x || []).length));
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () {
        var w = Math.max(240, el.clientWidth);
        if (Math.abs(w - plot.width) > 4) { plot.setSize({ width: w, height: plot.height }); }
      }).observe(el);
    }
  }

  function charts(root) { root.querySelectorAll("[data-chart]").forEach(chart); }

  function keepOpen(el) {
    var open = [];
    el.querySelectorAll("details[id][open]").forEach(function (d) { open.push(d.id); });
    return function () {
      open.forEach(function (id) {
        var d = document.getElementById(id);
        if (d) { d.open = true; }
      });
    };
  }

  var sources = {}; // data-live URL -> its EventSource

  function live(el) {
    var url = el.getAttribute("data-live");
    var refresh = el.getAttribute("data-refresh");
    var pending = false;
    var busy = false;
    function reload() {
      if (busy) { pending = true; return; }
      busy = true;
      var restore = keepOpen(el);
      htmx.ajax("GET", refresh, { target: el, swap: "innerHTML" }).then(function () {
        restore();
        charts(el);
        busy = false;
        if (pending) { pending = false; reload(); }
      }, function () { busy = false; });
    }
    var timer = null;
    var pace = Number(el.getAttribute("data-pace")) || 150;
    var source = sources[url] || (sources[url] = new EventSource(url));
    source.addEventListener("change", function () {
      if (timer === null) {
        timer = setTimeout(function () { timer = null; reload(); }, pace);
      }
    });
    // A change between the page's render and the stream's (re)connection
    // is not sent: reload once the stream is open to catch up.
    source.addEventListener("open", function () { document.body.classList.add("live"); reload(); });
    source.addEventListener("error", function () { document.body.classList.remove("live"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var csrf = document.body.getAttribute("data-csrf");
    document.body.addEventListener("htmx:configRequest", function (e) {
      if (csrf) { e.detail.headers["X-CSRF-Token"] = csrf; }
    });
    charts(document);
    document.querySelectorAll("[data-live]").forEach(live);
  });
})();
