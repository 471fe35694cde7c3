// Draws the overview's charts with the vendored uPlot from the figures at the section's
// data-series-url (the same figures as the tables under each chart, which stay the text
// alternative). A file, not an inline script: the page runs under script-src 'self'.
// uPlot sizes its elements through the CSSOM, which style-src 'self' allows.
"use strict";
(function () {
  var HEIGHT = 220;
  // WCAG 1.4.11: at least 3:1 against white for each line.
  var COLOURS = ["#0b4f8a", "#a30000", "#b35900", "#2d6a2d"];

  function utc(seconds) {
    return uPlot.tzDate(new Date(seconds * 1e3), "Etc/UTC");
  }

  // The tables say hours in UTC as 24-hour clock times: the axis says them the same way.
  function hours(u, splits) {
    return splits.map(function (s) {
      var d = utc(s);
      return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
    });
  }

  function options(chart, width) {
    var series = [{ label: "Hour (UTC)" }];
    chart.lines.forEach(function (line, i) {
      series.push({
        label: line.label,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        points: { show: true, size: 4 },
      });
    });
    return {
      width: width,
      height: HEIGHT,
      tzDate: utc,
      series: series,
      scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      axes: [{ values: hours }, { size: 60 }],
    };
  }

  function widthOf(element) {
    return Math.max(200, element.clientWidth);
  }

  function draw(section, data) {
    var plots = [];
    data.charts.forEach(function (chart) {
      var element = document.getElementById("chart-" + chart.key);
      if (!element) {
        return;
      }
      var columns = [data.times].concat(chart.lines.map(function (l) { return l.values; }));
      plots.push({ element: element, plot: new uPlot(options(chart, widthOf(element)), columns, element) });
    });
    window.addEventListener("resize", function () {
      plots.forEach(function (p) {
        p.plot.setSize({ width: widthOf(p.element), height: HEIGHT });
      });
    });
  }

  function failed(section) {
    // Without a drawing the tables are the charts: open them.
    section.querySelectorAll("details").forEach(function (d) { d.open = true; });
    var status = section.querySelector(".chart-status");
    if (status) {
      status.textContent = "The charts could not be drawn; their figures are in the tables.";
    }
  }

  window.addEventListener("DOMContentLoaded", function () {
    var section = document.querySelector("[data-series-url]");
    if (!section) {
      return;
    }
    if (typeof uPlot === "undefined") {
      failed(section);
      return;
    }
    fetch(section.getAttribute("data-series-url"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.json();
      })
      .then(function (data) { draw(section, data); })
      .catch(function () { failed(section); });
  });
})();
