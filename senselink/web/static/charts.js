// SenseLink status page: charts people can read, as inline SVG drawn at the chart's own
// pixel size (so text is not stretched): time ticks (minutes, hours, dates), value ticks with
// units, and a crosshair readout for mouse, touch and keyboard (arrow keys, Home, End).
// SenseCharts.draw(svg, spec) draws; the svg keeps its cursor across redraws.
"use strict";
var SenseCharts = (function () {
  var SVG = "http://www.w3.org/2000/svg";
  var HEIGHT = 180, LEFT = 56, RIGHT = 10, TOP = 10, BOTTOM = 24;
  var TIME_STEPS = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
                    86400];

  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function watts(w, digits) {
    if (Math.abs(w) >= 1000) {
      return (w / 1000).toLocaleString("en-US", {maximumFractionDigits: digits === undefined
        ? 2 : digits}) + " kW";
    }
    return w.toLocaleString("en-US", {maximumFractionDigits: digits === undefined ? 1
      : digits}) + " W";
  }
  function kwh(k) {       // under 1 kWh in Wh, so that ticks stay short
    if (k > 0 && k < 1) return (k * 1000).toLocaleString("en-US", {maximumFractionDigits: 1}) + " Wh";
    return k.toLocaleString("en-US", {maximumFractionDigits: k < 10 ? 3 : 1}) + " kWh";
  }
  var UNITS = {W: watts, kWh: kwh};

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function hhmm(t) { var d = new Date(t * 1000); return pad(d.getHours()) + ":" + pad(d.getMinutes()); }
  function hhmmss(t) { return hhmm(t) + ":" + pad(new Date(t * 1000).getSeconds()); }
  function date(d) { return d.toLocaleDateString("en-US", {month: "short", day: "numeric"}); }
  function day(key) {       // "YYYY-MM-DD", a local day
    var p = key.split("-");
    return date(new Date(Number(p[0]), Number(p[1]) - 1, Number(p[2])));
  }

  // A round step near max / count: 1, 2, 2.5 or 5 times a power of ten.
  function niceStep(max, count) {
    var raw = max / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= raw) return steps[i] * power;
    return 10 * power;
  }

  function valueTicks(max, unit) {
    var step = niceStep(max > 0 ? max : (unit === "W" ? 10 : 0.01), 4);
    var top = Math.max(step, Math.ceil(max / step - 1e-9) * step), ticks = [];
    for (var v = 0; v <= top + step / 2; v += step) ticks.push(v);
    return {top: top, ticks: ticks};
  }

  // Local-time ticks for [t0, t1] at most `most` of them; a tick at local midnight is a date.
  function timeTicks(t0, t1, most) {
    var span = t1 - t0, step = TIME_STEPS[TIME_STEPS.length - 1];
    for (var i = 0; i < TIME_STEPS.length; i++) {
      if (span / TIME_STEPS[i] <= most) { step = TIME_STEPS[i]; break; }
    }
    var zone = -new Date(t0 * 1000).getTimezoneOffset() * 60, out = [];
    for (var t = Math.ceil((t0 + zone) / step) * step - zone; t <= t1; t += step) {
      var d = new Date(t * 1000), midnight = d.getHours() === 0 && d.getMinutes() === 0;
      out.push([t, step < 60 ? hhmmss(t) : midnight && step >= 3600 ? date(d) : hhmm(t)]);
    }
    return out;
  }

  function frame(svg, spec) {
    var width = Math.max(Math.round(svg.getBoundingClientRect().width) || 600, 200);
    svg.setAttribute("viewBox", "0 0 " + width + " " + HEIGHT);
    var f = {width: width, x0: LEFT, x1: width - RIGHT, y0: HEIGHT - BOTTOM, y1: TOP};
    var max = 0;
    spec.points.forEach(function (p) { max = Math.max(max, p[spec.top || 1]); });
    var v = valueTicks(max, spec.unit), format = UNITS[spec.unit];
    f.y = function (w) { return f.y0 - w / v.top * (f.y0 - f.y1); };
    v.ticks.forEach(function (tick) {
      var y = f.y(tick).toFixed(1);
      svg.appendChild(svgEl("line", {"class": "grid", x1: f.x0, x2: f.x1, y1: y, y2: y}));
      svg.appendChild(svgEl("text", {"class": "tick", x: f.x0 - 6, y: y, "text-anchor": "end",
                                     "dominant-baseline": "middle"},
                            format(tick, tick < 1000 && tick % 1 === 0 ? 0 : undefined)));
    });
    svg.setAttribute("data-value-ticks", String(v.ticks.length));
    return f;
  }

  function timeAxis(svg, f, t0, t1) {
    f.x = function (t) { return f.x0 + (t - t0) / (t1 - t0) * (f.x1 - f.x0); };
    var ticks = timeTicks(t0, t1, Math.max(2, Math.floor((f.x1 - f.x0) / 70)));
    ticks.forEach(function (tick) {
      var x = f.x(tick[0]).toFixed(1);
      svg.appendChild(svgEl("line", {"class": "grid", x1: x, x2: x, y1: f.y0, y2: f.y0 + 4}));
      svg.appendChild(svgEl("text", {"class": "tick", x: x, y: HEIGHT - 6,
                                     "text-anchor": "middle"}, tick[1]));
    });
    svg.setAttribute("data-time-ticks", String(ticks.length));
  }

  function stepLine(f, points, t0, t1) {
    var out = [], y = function (w) { return f.y(w).toFixed(1); };
    var x = function (t) { return f.x(Math.max(t, t0)).toFixed(1); };
    points.forEach(function (p, i) {
      if (i > 0) out.push(x(p[0]) + "," + y(points[i - 1][1]));
      out.push(x(p[0]) + "," + y(p[1]));
    });
    if (points.length) out.push(f.x1.toFixed(1) + "," + y(points[points.length - 1][1]));
    return out.join(" ");
  }

  function drawSeries(svg, f, spec) {
    var pts = spec.points;
    if (spec.kind === "step") {
      svg.appendChild(svgEl("polyline", {"class": "line", points: stepLine(f, pts, spec.t0,
                                                                             spec.t1)}));
    } else if (spec.kind === "band") {       // [t, min, mean, max] per minute
      var upper = [], lower = [], mean = [];
      pts.forEach(function (m) {
        var x = f.x(m[0] + 30).toFixed(1);
        upper.push(x + "," + f.y(m[3]).toFixed(1));
        lower.unshift(x + "," + f.y(m[1]).toFixed(1));
        mean.push(x + "," + f.y(m[2]).toFixed(1));
      });
      svg.appendChild(svgEl("polygon", {"class": "band", points: upper.concat(lower).join(" ")}));
      svg.appendChild(svgEl("polyline", {"class": "line", points: mean.join(" ")}));
    } else if (spec.kind === "mean") {       // [t, mean] per minute
      svg.appendChild(svgEl("polyline", {"class": "line", points: pts.map(function (m) {
        return f.x(m[0] + 30).toFixed(1) + "," + f.y(m[1]).toFixed(1); }).join(" ")}));
    }
  }

  function drawBars(svg, f, spec) {
    var n = Math.max(spec.points.length, 1), w = (f.x1 - f.x0) / n;
    var every = Math.ceil(n / Math.max(1, Math.floor((f.x1 - f.x0) / 56)));
    f.x = function (i) { return f.x0 + (i + 0.5) * w; };
    spec.points.forEach(function (d, i) {
      var top = f.y(d[1]);
      svg.appendChild(svgEl("rect", {"class": "bar", x: (f.x0 + i * w + 1).toFixed(1),
                                     width: Math.max(w - 2, 1).toFixed(1), y: top.toFixed(1),
                                     height: (f.y0 - top).toFixed(1)}));
      if ((n - 1 - i) % every === 0) {
        svg.appendChild(svgEl("text", {"class": "tick", x: f.x(i).toFixed(1), y: HEIGHT - 6,
                                       "text-anchor": "middle"}, day(d[0])));
      }
    });
    svg.setAttribute("data-time-ticks", String(Math.ceil(n / every)));
  }

  // The point under the cursor: index into spec.points.
  function pick(state, clientX) {
    var spec = state.spec, f = state.frame, pts = spec.points;
    if (!pts.length) return null;
    var rect = state.svg.getBoundingClientRect();
    var x = (clientX - rect.left) / rect.width * f.width;
    if (spec.kind === "bars") {
      return Math.max(0, Math.min(pts.length - 1, Math.floor((x - f.x0) / (f.x1 - f.x0) *
                                                             pts.length)));
    }
    var t = spec.t0 + (x - f.x0) / (f.x1 - f.x0) * (spec.t1 - spec.t0), best = 0;
    for (var i = 0; i < pts.length; i++) {
      var at = spec.kind === "step" ? pts[i][0] : pts[i][0] + 30;
      if (spec.kind === "step" ? at <= t : Math.abs(at - t) < Math.abs(pts[best][0] + 30 - t)) {
        best = i;
      }
    }
    return best;
  }

  function readout(spec, p) {
    var unit = UNITS[spec.unit];
    if (spec.kind === "bars") return day(p[0]) + ": " + unit(p[1]);
    if (spec.kind === "band") {
      return hhmm(p[0]) + ": mean " + unit(p[2]) + " (min " + unit(p[1]) + ", max " +
             unit(p[3]) + ")";
    }
    if (spec.kind === "mean") return hhmm(p[0]) + ": mean " + unit(p[1]);
    return "from " + hhmmss(Math.max(p[0], spec.t0)) + ": " + unit(p[1]);
  }

  function showCursor(state) {
    var svg = state.svg, old = svg.querySelector(".cursor");
    if (old) svg.removeChild(old);
    var pts = state.spec.points, f = state.frame;
    if (state.index === null || !pts.length) {
      state.readout.textContent = state.spec.hint || "";
      return;
    }
    state.index = Math.max(0, Math.min(pts.length - 1, state.index));
    var p = pts[state.index], kind = state.spec.kind;
    var x = kind === "bars" ? f.x(state.index) : kind === "step" ? f.x(Math.max(p[0], state.spec.t0))
                                                                  : f.x(p[0] + 30);
    var g = svgEl("g", {"class": "cursor"});
    g.appendChild(svgEl("line", {x1: x.toFixed(1), x2: x.toFixed(1), y1: f.y1, y2: f.y0}));
    var value = kind === "band" ? p[2] : p[1];
    g.appendChild(svgEl("circle", {cx: x.toFixed(1), cy: f.y(value).toFixed(1), r: 3.5}));
    svg.appendChild(g);
    state.readout.textContent = readout(state.spec, p);
  }

  function listen(state) {
    var svg = state.svg;
    svg.setAttribute("tabindex", "0");
    var move = function (e) { state.index = pick(state, e.clientX); showCursor(state); };
    svg.addEventListener("pointermove", move);
    svg.addEventListener("pointerdown", move);
    svg.addEventListener("pointerleave", function (e) {
      if (e.pointerType === "mouse" && document.activeElement !== svg) {
        state.index = null; showCursor(state);
      }
    });
    svg.addEventListener("focus", function () {
      if (state.index === null) { state.index = state.spec.points.length - 1; showCursor(state); }
    });
    svg.addEventListener("blur", function () { state.index = null; showCursor(state); });
    svg.addEventListener("keydown", function (e) {
      var n = state.spec.points.length, step = {ArrowLeft: -1, ArrowRight: 1,
        PageUp: -10, PageDown: 10}[e.key];
      if (!n) return;
      if (step !== undefined) state.index = (state.index === null ? n - 1 : state.index) + step;
      else if (e.key === "Home") state.index = 0;
      else if (e.key === "End") state.index = n - 1;
      else return;
      e.preventDefault();
      showCursor(state);
    });
  }

  // spec: {kind: "step" | "band" | "mean" | "bars", points, t0, t1 (not for bars),
  //        unit: "W" | "kWh", empty: words shown when there are no points, hint}.
  // readoutNode: where the crosshair's value is written.
  function draw(svg, spec, readoutNode) {
    var state = svg.chartState;
    if (!state) {
      state = svg.chartState = {svg: svg, index: null, readout: readoutNode};
      listen(state);
    }
    var key = state.index !== null && state.spec && state.spec.points[state.index];
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    state.spec = spec;
    spec.top = spec.kind === "band" ? 3 : 1;
    var f = state.frame = frame(svg, spec);
    if (spec.kind === "bars") drawBars(svg, f, spec); else timeAxis(svg, f, spec.t0, spec.t1);
    if (spec.kind !== "bars") drawSeries(svg, f, spec);
    svg.setAttribute("data-points", String(spec.points.length));
    if (!spec.points.length || spec.blank) {
      svg.appendChild(svgEl("text", {"class": "empty", x: ((f.x0 + f.x1) / 2).toFixed(1),
                                     y: (HEIGHT / 2).toFixed(1), "text-anchor": "middle"},
                            spec.empty));
    }
    if (key) {      // the cursor stays on the same time (or day) across redraws
      state.index = null;
      spec.points.forEach(function (p, i) { if (p[0] === key[0]) state.index = i; });
      if (state.index === null) state.index = spec.points.length - 1;
    }
    showCursor(state);
  }

  // A chart under a heading: {svg, readout, note}, appended to parent.
  function figure(container, id, title, label) {
    var parent = document.createElement("div");
    parent.className = "figure";
    container.appendChild(parent);
    var heading = document.createElement("h3");
    heading.textContent = title;
    parent.appendChild(heading);
    var svg = svgEl("svg", {"class": "chart", id: id, role: "img", "aria-label": label +
                            "; arrow keys move the readout"});
    parent.appendChild(svg);
    var out = document.createElement("p");
    out.className = "readout";
    out.setAttribute("aria-live", "polite");
    parent.appendChild(out);
    var note = document.createElement("small");
    parent.appendChild(note);
    return {svg: svg, readout: out, note: note};
  }

  return {draw: draw, figure: figure, watts: watts, kwh: kwh, hhmm: hhmm, timeTicks: timeTicks,
          valueTicks: valueTicks};
})();
