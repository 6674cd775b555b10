// SenseLink status page: filled and kept live from /api/events (Server-Sent Events).
// Charts are inline SVG drawn here; text is always set with textContent.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var WINDOW = 600;                       // seconds in a sparkline
  var TOKEN_KEY = "senselink-token";
  var plugs = new Map();                  // id -> {data, card, points: [[t, w]...]}
  var status = null;
  var offset = 0;                         // server clock - browser clock, seconds
  var source = null;
  var detailTimer = null;
  var detailLoaded = 0;                   // Date.now() of the last history fetch

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function now() { return Date.now() / 1000 + offset; }
  function watts(w) {
    return w.toLocaleString("en-US", {minimumFractionDigits: 1, maximumFractionDigits: 1}) + " W";
  }
  function kwh(k) { return k.toFixed(3) + " kWh"; }
  function ago(t) {
    if (t === null || t === undefined) return "never";
    var s = Math.max(0, now() - t);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return (s / 3600).toFixed(1) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }
  function clock(t) { return new Date((t - offset) * 1000).toLocaleTimeString(); }

  // ------------------------------------------------------------------ charts

  function scale(max) { return max > 0 ? max : 1; }

  // y of watts w in a chart whose top value is at y=25 and 0 at y=175 (viewBox 600 x 180).
  function chartY(top) { return function (w) { return (175 - w / top * 150).toFixed(1); }; }
  function sparkY(top) { return function (w) { return (39 - w / top * 37).toFixed(1); }; }

  // A step line of [t, w] points over [t0, t1], x in 0..width; returns the polyline's points.
  function steps(points, t0, t1, width, y) {
    var out = [];
    var x = function (t) { return ((Math.max(t, t0) - t0) / (t1 - t0) * width).toFixed(1); };
    for (var i = 0; i < points.length; i++) {
      var p = points[i];
      if (i > 0) out.push(x(p[0]) + "," + y(points[i - 1][1]));
      out.push(x(p[0]) + "," + y(p[1]));
    }
    if (points.length) out.push(width + "," + y(points[points.length - 1][1]));
    return out.join(" ");
  }

  function drawSpark(entry) {
    var t1 = now(), t0 = t1 - WINDOW;
    var pts = entry.points;
    while (pts.length > 1 && pts[1][0] <= t0) pts.shift();
    // A history younger than 10 minutes fills the width (at least the last second).
    if (pts.length && pts[0][0] > t0) t0 = Math.min(pts[0][0], t1 - 1);
    var max = 0;
    pts.forEach(function (p) { max = Math.max(max, p[1]); });
    var svg = entry.spark;
    svg.setAttribute("data-points", String(pts.length));
    svg.firstChild.setAttribute("points", steps(pts, t0, t1, 300, sparkY(scale(max))));
  }

  function chart(label) {
    var svg = svgEl("svg", {"class": "chart", viewBox: "0 0 600 180",
                            preserveAspectRatio: "none", role: "img", "aria-label": label});
    return svg;
  }

  // Grid lines at the top value and at 0; the labels are HTML (SVG text would stretch).
  function axis(svg, top, unit) {
    [25, 175].forEach(function (y) {
      svg.appendChild(svgEl("line", {"class": "grid", x1: 0, x2: 600, y1: y, y2: y,
                                     "vector-effect": "non-scaling-stroke"}));
    });
    svg.setAttribute("data-top", unit(top));
  }

  function drawRecent(svg, points, t1) {
    var t0 = t1 - WINDOW, max = 0;
    points.forEach(function (p) { max = Math.max(max, p[1]); });
    var top = scale(max);
    axis(svg, top, watts);
    var line = svgEl("polyline", {"class": "line", points: steps(points, t0, t1, 600, chartY(top)),
                                  "vector-effect": "non-scaling-stroke"});
    svg.appendChild(line);
    svg.setAttribute("data-points", String(points.length));
  }

  function drawDay(svg, minutes, t1) {
    var t0 = t1 - 86400, max = 0;
    minutes.forEach(function (m) { max = Math.max(max, m[3]); });
    var top = scale(max);
    axis(svg, top, watts);
    var x = function (t) { return ((t - t0) / 86400 * 600).toFixed(1); };
    var y = chartY(top);
    var upper = [], lower = [], mean = [];
    minutes.forEach(function (m) {
      upper.push(x(m[0]) + "," + y(m[3]));
      lower.unshift(x(m[0]) + "," + y(m[1]));
      mean.push(x(m[0]) + "," + y(m[2]));
    });
    svg.appendChild(svgEl("polygon", {"class": "band", points: upper.concat(lower).join(" ")}));
    svg.appendChild(svgEl("polyline", {"class": "line", points: mean.join(" "),
                                       "vector-effect": "non-scaling-stroke"}));
    svg.setAttribute("data-points", String(minutes.length));
  }

  function drawDays(svg, days) {
    var max = 0;
    days.forEach(function (d) { max = Math.max(max, d[1]); });
    var top = scale(max), width = 600 / Math.max(days.length, 1);
    axis(svg, top, kwh);
    days.forEach(function (d, i) {
      var h = d[1] / top * 150;
      var bar = svgEl("rect", {"class": "bar", x: (i * width + 1).toFixed(1), width:
                               Math.max(width - 2, 1).toFixed(1), y: (175 - h).toFixed(1),
                               height: h.toFixed(1)});
      var title = svgEl("title");
      title.textContent = d[0] + ": " + kwh(d[1]);
      bar.appendChild(title);
      svg.appendChild(bar);
    });
    svg.setAttribute("data-points", String(days.length));
  }

  // ------------------------------------------------------------------ plugs

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function card(p) {
    var node = el("article", "plug");
    node.id = "plug-" + p.id;
    node.setAttribute("data-id", p.id);
    var head = el("div", "head");
    var name = el("a", "alias", p.alias);
    name.href = "#plug=" + encodeURIComponent(p.id);
    head.appendChild(name);
    head.appendChild(el("span", "watts"));
    node.appendChild(head);
    var where = p.reported ? "reported" : "in " + (p.aggregate || "an aggregate");
    node.appendChild(el("small", "", p.id + " · " + p.kind + " · " + where));
    node.appendChild(el("small", "state"));
    var energy = el("div", "energy");
    ["today", "month", "total"].forEach(function (k) {
      var span = el("span", "e-" + k);
      span.appendChild(el("b", "", k === "month" ? "this month " : k + " "));
      span.appendChild(el("span", "value"));
      energy.appendChild(span);
    });
    node.appendChild(energy);
    var spark = svgEl("svg", {"class": "spark", viewBox: "0 0 300 40",
                              preserveAspectRatio: "none", role: "img",
                              "aria-label": "last 10 minutes"});
    spark.appendChild(svgEl("polyline", {"vector-effect": "non-scaling-stroke"}));
    node.appendChild(spark);
    if (p.mutable) node.appendChild(controls(p));
    return {data: p, card: node, spark: spark, points: []};
  }

  function controls(p) {
    var form = el("form", "controls");
    var input = el("input");
    input.type = "number"; input.min = "0"; input.step = "any"; input.placeholder = "watts";
    input.setAttribute("aria-label", "watts for " + p.alias);
    var set = el("button", "set", "Set");
    set.type = "submit";
    var on = el("button", "turn-on", "On");
    on.type = "button";
    var off = el("button", "turn-off", "Off");
    off.type = "button";
    var note = el("span", "note");
    form.appendChild(input); form.appendChild(set); form.appendChild(on); form.appendChild(off);
    form.appendChild(note);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (input.value !== "") put(p.id, {power: Number(input.value)}, note);
    });
    on.addEventListener("click", function () { put(p.id, {state: "on"}, note); });
    off.addEventListener("click", function () { put(p.id, {state: "off"}, note); });
    return form;
  }

  function put(id, body, note) {
    note.textContent = "…";
    fetch("api/plugs/" + encodeURIComponent(id), {
      method: "PUT", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token()}
    }).then(function (r) {
      return r.json().then(function (doc) {
        if (r.status === 401) {
          sessionStorage.removeItem(TOKEN_KEY);
          showControls();
        }
        note.textContent = r.ok ? "" : doc.error;
      });
    }).catch(function () { note.textContent = "not sent: the daemon is not reachable"; });
  }

  function showControls() {
    var writable = status && status.writable;
    var unlocked = writable && token() !== "";
    $("unlock").hidden = !writable || unlocked;
    document.querySelectorAll("form.controls").forEach(function (f) { f.hidden = !unlocked; });
  }

  function updatePlug(entry) {
    var p = entry.data, c = entry.card;
    c.querySelector(".watts").textContent = watts(p.watts);
    var state = c.querySelector(".state");
    state.textContent = "";
    state.appendChild(el("span", p.on ? "on" : "off", p.on ? "on" : "off"));
    state.appendChild(document.createTextNode(p.updated === null ? " · as configured"
                                                                 : " · value " + ago(p.updated)));
    if (p.energy) {
      c.querySelector(".e-today .value").textContent = kwh(p.energy.today_kwh);
      c.querySelector(".e-month .value").textContent = kwh(p.energy.month_kwh);
      c.querySelector(".e-total .value").textContent = kwh(p.energy.total_kwh);
    }
  }

  function snapshot(doc) {
    offset = doc.now - Date.now() / 1000;
    var list = $("plugs");
    list.textContent = "";
    plugs.clear();
    doc.plugs.forEach(function (p) {
      var entry = card(p);
      entry.points = p.spark.map(function (s) { return [doc.now + s[0], s[1]]; });
      plugs.set(p.id, entry);
      list.appendChild(entry.card);
      updatePlug(entry);
      drawSpark(entry);
    });
    if (!doc.plugs.length) list.appendChild(el("p", "note", "No plugs configured."));
    applyStatus(doc.status);
    route();
  }

  function changed(doc) {
    offset = doc.now - Date.now() / 1000;
    doc.plugs.forEach(function (p) {
      var entry = plugs.get(p.id);
      if (!entry) return;
      entry.data.watts = p.watts; entry.data.on = p.on; entry.data.updated = p.updated;
      entry.points.push([p.updated || doc.now, p.watts]);
      updatePlug(entry);
      drawSpark(entry);
    });
    updateTotal();
    var open = detailId();
    if (open !== null && Date.now() - detailLoaded > 2000 &&
        doc.plugs.some(function (p) { return p.id === open; })) loadDetail(open);
  }

  function updateTotal() {
    var total = 0;
    plugs.forEach(function (e) { if (e.data.reported) total += e.data.watts; });
    $("total").textContent = watts(total);
    var reported = 0;
    plugs.forEach(function (e) { if (e.data.reported) reported += 1; });
    $("summary").textContent = plugs.size + " plugs, " + reported + " reported to Sense";
  }

  // ------------------------------------------------------------------ status

  function requesters(box, r, what) {
    var dl = box.querySelector("dl");
    dl.textContent = "";
    var rows = [
      ["last request", r.last_request === null ? "none yet" :
        clock(r.last_request) + " (" + ago(r.last_request) + ")"],
      ["from", r.addresses.length ? r.addresses.map(function (a) { return a.address; })
        .join(", ") : "—"],
      ["polls/min", String(r.polls_per_minute)],
      ["requests", String(r.requests)],
      ["replies sent", String(r.replies)]
    ];
    rows.forEach(function (row) {
      dl.appendChild(el("dt", "", row[0]));
      var dd = el("dd", "", row[1]);
      dd.setAttribute("data-key", row[0]);
      dl.appendChild(dd);
    });
    box.setAttribute("data-requests", String(r.requests));
    box.title = what;
  }

  function applyStatus(s) {
    status = s;
    offset = s.now - Date.now() / 1000;
    requesters($("sense"), s.sense, "Sense monitor");
    requesters($("kasa"), s.kasa_clients, "Kasa clients");
    var banner = $("banner");
    if (s.silence) {
      $("banner-title").textContent = s.silence.since_start
        ? "No Sense request since SenseLink started " + Math.round(s.silence.seconds) + " s ago."
        : "No Sense request for " + Math.round(s.silence.seconds) + " s.";
      var causes = $("banner-causes");
      causes.textContent = "";
      s.silence.causes.forEach(function (c) {
        var li = el("li", c.applies ? "applies" : "", c.text);
        if (c.cause === "target" && s.target) li.textContent += " (target: " + s.target + ")";
        causes.appendChild(li);
      });
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    var list = $("sources");
    list.textContent = "";
    s.sources.forEach(function (src) {
      var li = el("li");
      li.appendChild(el("strong", "", src.kind + " "));
      li.appendChild(el("span", src.connected ? "up" : "down",
                        src.connected ? "connected" : "not connected"));
      li.appendChild(el("small", "", src.label || ""));
      li.appendChild(el("small", "", "last value " + ago(src.last_update)));
      if (src.last_error) li.appendChild(el("small", "error", "last error: " + src.last_error));
      list.appendChild(li);
    });
    var pub = s.publisher;
    if (pub) {
      var item = el("li");
      item.appendChild(el("strong", "", "publishing to MQTT "));
      item.appendChild(el("span", pub.connected ? "up" : "down",
                          pub.connected ? "connected" : "not connected"));
      item.appendChild(el("small", "", pub.label || ""));
      item.appendChild(el("small", "", pub.plugs + " plug(s)" +
                          (pub.waiting ? ", " + pub.waiting + " message(s) waiting" : "")));
      if (pub.last_error) item.appendChild(el("small", "error", "last error: " + pub.last_error));
      list.appendChild(item);
    }
    if (!s.sources.length && !pub) {
      list.appendChild(el("li", "note", "No connected sources (static and mutable plugs only)."));
    }
    showControls();
    updateTotal();
  }

  function statusEvent(doc) {
    Object.keys(doc.energy).forEach(function (id) {
      var entry = plugs.get(id);
      if (!entry) return;
      var e = doc.energy[id];
      entry.data.energy = {today_kwh: e[0], month_kwh: e[1], total_kwh: e[2]};
      updatePlug(entry);
    });
    applyStatus(doc.status);
  }

  // ------------------------------------------------------------------ detail view

  function detailId() {
    var m = /^#plug=(.*)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function route() {
    var id = detailId();
    var box = $("detail");
    if (detailTimer) { clearInterval(detailTimer); detailTimer = null; }
    if (id === null || !plugs.has(id)) { box.hidden = true; box.textContent = ""; return; }
    box.hidden = false;
    loadDetail(id);
    detailTimer = setInterval(function () { loadDetail(id); }, 30000);
  }

  function loadDetail(id) {
    detailLoaded = Date.now();
    fetch("api/plugs/" + encodeURIComponent(id) + "/history").then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (doc) {
      if (doc && detailId() === id) renderDetail(doc);
    }).catch(function () { /* the stream reports the connection */ });
  }

  function renderDetail(doc) {
    var box = $("detail");
    box.textContent = "";
    var top = el("div", "top");
    top.appendChild(el("h2", "", doc.alias));
    var close = el("a", "", "close");
    close.href = "#";
    top.appendChild(close);
    box.appendChild(top);
    box.appendChild(el("p", "big", watts(doc.watts)));
    var recent = detailChart(box, "Last 10 minutes", "watts over the last 10 minutes",
                             "chart-recent", function (c) { drawRecent(c, doc.recent, doc.now); });
    box.appendChild(el("small", "", "top line " + recent.getAttribute("data-top") +
                       ", bottom line 0 W; now at the right"));
    var day = detailChart(box, "Last 24 hours (per minute: min to max, and mean)",
                          "watts over the last 24 hours", "chart-day",
                          function (c) { drawDay(c, doc.minutes, doc.now); });
    box.appendChild(el("small", "", "top line " + day.getAttribute("data-top") +
                       ", bottom line 0 W; now at the right"));
    var days = detailChart(box, "Last 30 days (kWh per day)",
                           "energy per day over the last 30 days", "chart-days",
                           function (c) { drawDays(c, doc.days); });
    if (doc.days.length) {
      box.appendChild(el("small", "", doc.days[0][0] + " to " + doc.days[doc.days.length - 1][0] +
                         " (today); top line " + days.getAttribute("data-top")));
    }
  }

  // One chart of the detail view under its heading; returns the chart.
  function detailChart(box, heading, label, id, draw) {
    box.appendChild(el("h3", "", heading));
    var c = chart(label);
    c.id = id;
    draw(c);
    box.appendChild(c);
    return c;
  }

  // ------------------------------------------------------------------ connection

  function connect() {
    source = new EventSource("api/events");
    source.addEventListener("snapshot", function (e) { snapshot(JSON.parse(e.data)); });
    source.addEventListener("plugs", function (e) { changed(JSON.parse(e.data)); });
    source.addEventListener("status", function (e) { statusEvent(JSON.parse(e.data)); });
    source.onopen = function () { $("live").className = "ok"; $("live").textContent = "live"; };
    source.onerror = function () {
      $("live").className = "bad";
      $("live").textContent = "reconnecting…";
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(connect, 2000);          // the browser gave up: start again
      }
    };
  }

  function tick() {
    plugs.forEach(function (entry) { updatePlug(entry); drawSpark(entry); });
    if (status) {
      requesters($("sense"), status.sense, "Sense monitor");
      requesters($("kasa"), status.kasa_clients, "Kasa clients");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("unlock").addEventListener("submit", function (e) {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token").value);
      $("token").value = "";
      showControls();
    });
    window.addEventListener("hashchange", route);
    connect();
    setInterval(tick, 5000);
  });
})();
