// The rollout page's charts: canary against stable per judgement, drawn with uPlot from the
// JSON the page carries in #rollout-data. Drawn again when the live update swaps the page.
(function () {
  "use strict";
  var COLOURS = ["#0b5cad", "#a0410d", "#1a7f37", "#8250df", "#8a5a00", "#c0262d"];
  var plots = [];

  function series(label, index) {
    var canary = label.indexOf("canary") === 0;
    var colour = COLOURS[Math.floor(index / 2) % COLOURS.length];
    if (label === "stable") colour = COLOURS[0];
    if (label === "canary") colour = COLOURS[1];
    return { label: label, stroke: colour, width: 2, dash: canary ? undefined : [6, 4],
             points: { show: true, size: 7 } };
  }

  // One judgement is one point: give it a few seconds either side (uPlot would pad it by
  // years before asking for the range).
  function timeRange(times) {
    return function (u, min, max) {
      return times.length === 1 ? [times[0] - 5, times[0] + 5] : [min, max];
    };
  }

  function draw() {
    plots.forEach(function (plot) { plot.destroy(); });
    plots = [];
    var source = document.getElementById("rollout-data");
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    data.charts.forEach(function (chart) {
      var target = document.getElementById("chart-" + chart.key);
      if (!target) return;
      var labels = Object.keys(chart.lines).sort(function (a, b) {
        // stable and canary of one class side by side: sort by class, then side
        var ka = a.split(" ").slice(1).join(" "), kb = b.split(" ").slice(1).join(" ");
        return ka === kb ? (a < b ? -1 : 1) : (ka < kb ? -1 : 1);
      });
      var options = {
        width: Math.max(260, target.clientWidth),
        height: 220,
        scales: { x: { time: true, range: timeRange(data.times) } },
        series: [{}].concat(labels.map(series)),
        axes: [{}, { label: chart.unit, size: 56 }],
        legend: { live: false },
      };
      var values = [data.times].concat(labels.map(function (l) { return chart.lines[l]; }));
      plots.push(new uPlot(options, values, target));
    });
  }

  function resize() {
    plots.forEach(function (plot) {
      plot.setSize({ width: Math.max(260, plot.root.parentNode.clientWidth), height: 220 });
    });
  }

  // A deferred script: the body exists, and DOMContentLoaded is still to come.
  document.addEventListener("DOMContentLoaded", draw);
  document.body.addEventListener("htmx:afterSettle", draw);
  window.addEventListener("resize", resize);
})();
