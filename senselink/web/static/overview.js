// SenseLink status page: the house overview. The total reported to Sense over the last
// 10 minutes (from /api/house, then extended from the event stream) and 24 hours (asking
// /api/house?since= once a minute for what is new); the plugs' order (by watts, largest
// first, or the config's), each plug's share of the total, and the sparklines' scale.
"use strict";
var SenseOverview = (function () {
  var SORT_KEY = "senselink-sort", SCALE_KEY = "senselink-scale";

  // o: {plugs: Map id -> entry (entry.data, entry.card, entry.points), now(), list (the
  //     plugs' container), started() (when SenseLink started, or null)}
  function create(o) {
    var house = {recent: [], minutes: [], since: null, now: null};
    var box = document.getElementById("house-charts");
    var recent = SenseCharts.figure(box, "house-recent", "Last 10 minutes",
                                    "total watts reported over the last 10 minutes");
    var day = SenseCharts.figure(box, "house-day", "Last 24 hours",
                                 "total watts reported over the last 24 hours, per minute");
    var sort = localStorage.getItem(SORT_KEY) === "config" ? "config" : "watts";
    var shared = localStorage.getItem(SCALE_KEY) !== "own";
    var byWatts = document.getElementById("sort-watts");
    var byConfig = document.getElementById("sort-config");
    var scale = document.getElementById("shared-scale");

    function setSort(how) {
      sort = how;
      localStorage.setItem(SORT_KEY, how);
      order();
    }
    byWatts.addEventListener("click", function () { setSort("watts"); });
    byConfig.addEventListener("click", function () { setSort("config"); });
    scale.setAttribute("aria-pressed", String(shared));
    scale.addEventListener("click", function () {
      shared = !shared;
      scale.setAttribute("aria-pressed", String(shared));
      localStorage.setItem(SCALE_KEY, shared ? "shared" : "own");
      o.redraw();
    });

    function total() {
      var sum = 0;
      o.plugs.forEach(function (e) { if (e.data.reported) sum += e.data.watts; });
      return sum;
    }

    // Largest first (ties in config order), or the config's order; the DOM moves only when
    // the order changed, and focus stays where it was.
    function order() {
      byWatts.setAttribute("aria-pressed", String(sort === "watts"));
      byConfig.setAttribute("aria-pressed", String(sort === "config"));
      var entries = [];
      o.plugs.forEach(function (e) { entries.push(e); });
      if (sort === "watts") {
        entries = entries.map(function (e, i) { return [e, i]; }).sort(function (a, b) {
          return b[0].data.watts - a[0].data.watts || a[1] - b[1];
        }).map(function (x) { return x[0]; });
      }
      var current = Array.prototype.slice.call(o.list.querySelectorAll("article.plug"));
      var same = current.length === entries.length && entries.every(function (e, i) {
        return current[i] === e.card; });
      if (same) return;
      var focused = document.activeElement;
      entries.forEach(function (e) { o.list.appendChild(e.card); });
      if (focused && o.list.contains(focused) && document.activeElement !== focused) {
        focused.focus();
      }
    }

    function shares() {
      var sum = total();
      o.plugs.forEach(function (e) {
        var share = sum > 0 ? Math.min(1, Math.max(0, e.data.watts / sum)) : 0;
        e.card.querySelector(".share-bar span").style.width = (share * 100).toFixed(1) + "%";
        e.card.querySelector(".share-text").textContent = (share * 100).toFixed(share < 0.1
          ? 1 : 0) + " % of the total" + (e.data.reported ? "" : " (in " + e.data.aggregate + ")");
      });
    }

    // The sparklines' top value: every plug's largest in the window (one scale), or null.
    function sparkTop() {
      var note = document.querySelector(".plug-tools .scale-top");
      if (!shared) { note.textContent = "(each to its own largest value)"; return null; }
      var top = 0;
      o.plugs.forEach(function (e) {
        e.points.forEach(function (p) { top = Math.max(top, p[1]); });
      });
      note.textContent = "(0 to " +
        SenseCharts.watts(top > 0 ? top : 1) + ")";
      return top;
    }

    function drawCharts() {
      var t1 = o.now(), started = o.started();
      var since = "SenseLink started" + (started !== null ? " at " + SenseCharts.hhmm(started)
                                                            : " recently");
      var t0 = t1 - 600;
      var pts = house.recent.filter(function (p, i) {
        var next = house.recent[i + 1];
        return !next || next[0] > t0;
      });
      if (pts.length && pts[0][0] > t0) t0 = Math.min(pts[0][0], t1 - 60);
      SenseCharts.draw(recent.svg, {kind: "step", points: pts, t0: t0, t1: t1, unit: "W",
                                    empty: "No values yet: " + since},
                       recent.readout);
      var mins = house.minutes.filter(function (m) { return m[0] > t1 - 86400; });
      // Only the data there is: a fresh start fills the width (at least 10 minutes).
      var first = mins.length ? mins[0][0] : t1;
      var d0 = Math.min(first, t1 - 600);
      SenseCharts.draw(day.svg, {kind: "mean", points: mins, t0: d0, t1: t1 + 60, unit: "W",
                                 blank: mins.length < 2,
                                 empty: "Little history yet: " + since},
                       day.readout);
      day.note.textContent = mins.length ? "since " + SenseCharts.hhmm(first) +
        (first > t1 - 86340 ? " (when history begins)" : "") + "; mean of each minute" : "";
      recent.note.textContent = "a step at each change of a reported plug";
    }

    function load(update) {
      var since = update && house.now !== null;
      fetch("api/house" + (since ? "?since=" + house.now : "")).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (doc) {
        if (!doc) return;
        if (since && doc.minutes.length) {
          var from = doc.minutes[0][0];
          house.minutes = house.minutes.filter(function (m) { return m[0] < from; })
            .concat(doc.minutes);
        } else if (!since) {
          house.recent = doc.recent;
          house.minutes = doc.minutes;
        }
        house.now = doc.now;
        drawCharts();
      }).catch(function () { /* the stream reports the connection */ });
    }

    return {
      snapshot: function () { order(); shares(); load(false); },
      // The stream's changes: a point of the 10-minute total.
      changed: function (t) {
        var last = house.recent[house.recent.length - 1], sum = total();
        if (last && t - last[0] < 1) last[1] = sum; else house.recent.push([t, sum]);
        while (house.recent.length > 1 && house.recent[1][0] <= t - 600) house.recent.shift();
        order(); shares(); drawCharts();
      },
      minute: function () { if (house.now !== null) load(true); },
      redraw: drawCharts,
      sparkTop: sparkTop
    };
  }

  return {create: create};
})();
