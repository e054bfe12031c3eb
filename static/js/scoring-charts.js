/* Portefeuille: draws the scoring charts from the JSON each page carries (json_script), when the page loads and
   whenever htmx swaps in new content. A canvas names its chart with data-chart and the JSON holding it with
   data-chart-source; the JSON maps chart names to {type, labels, datasets}. */
(function () {
  "use strict";

  function chartOptions(type) {
    var options = { responsive: true, plugins: { legend: { display: type !== "bar" } } };
    if (type === "line") {
      options.scales = { y: { beginAtZero: true, suggestedMax: 100 } };
    }
    if (type === "doughnut") {
      options.aspectRatio = 2;
      options.plugins.legend.position = "right";
    }
    return options;
  }

  function draw(root) {
    if (typeof window.Chart === "undefined") {
      return;
    }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.chartSource);
      var chart = source && JSON.parse(source.textContent)[canvas.dataset.chart];
      if (!chart) {
        return;
      }
      var existing = window.Chart.getChart(canvas);
      if (existing) {
        existing.destroy();
      }
      new window.Chart(canvas, {
        type: chart.type,
        data: { labels: chart.labels, datasets: chart.datasets },
        options: chartOptions(chart.type),
      });
    });
  }

  if (window.htmx) {
    window.htmx.onLoad(draw);
  } else {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  }
})();
