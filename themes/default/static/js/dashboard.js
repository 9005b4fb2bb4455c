/* Draws the dashboard's charts with the vendored ECharts.
 * Each chart's data sits in a <script type="application/json"> next to its container
 * (the CSP allows no inline script); the table under each chart is the text alternative. */
(function () {
  "use strict";
  var PALETTE = ["#b91c1c", "#1d4ed8", "#15803d", "#b45309", "#6d28d9", "#0e7490"];

  function option(data, narrow) {
    var horizontal = data.kind === "hbar";
    var category = {
      type: "category",
      data: data.categories,
      axisLabel: { interval: 0, width: narrow ? 90 : 160, overflow: "truncate", rotate: !horizontal && narrow && data.categories.length > 4 ? 40 : 0 },
      inverse: horizontal
    };
    var value = {
      type: "value",
      name: data.unit,
      nameTextStyle: { align: horizontal ? "center" : "left" },
      splitNumber: narrow ? 3 : 5,
      axisLabel: { hideOverlap: true }
    };
    return {
      color: PALETTE,
      animation: false,
      tooltip: { trigger: "axis", confine: true },
      legend: { show: data.series.length > 1, top: 0 },
      grid: { left: 8, right: 24, top: data.series.length > 1 ? 32 : 28, bottom: 8, containLabel: true },
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? category : value,
      series: data.series.map(function (s) {
        return { name: s.name, type: data.kind === "line" ? "line" : "bar", data: s.values, barMaxWidth: 28 };
      })
    };
  }

  function draw() {
    if (!window.echarts) { return; }
    var narrow = window.innerWidth < 600;
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) { return; }
      var data = JSON.parse(source.textContent);
      var rows = data.kind === "hbar" ? data.categories.length : 0;
      el.style.height = Math.max(260, Math.min(900, 60 + rows * 34)) + "px";
      var chart = window.echarts.init(el);
      chart.setOption(option(data, narrow));
      el.setAttribute("data-drawn", "1");
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
