// SenseLink status page: filled and kept live from /api/events (Server-Sent Events),
// shared by the tabs of a browser (stream.js).
// Sparklines are inline SVG drawn here, the charts by charts.js, the house overview by
// overview.js; text is always set with textContent.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var WINDOW = 600;                       // seconds in a sparkline
  var TOKEN_KEY = "senselink-token";
  var plugs = new Map();                  // id -> {data, card, points: [[t, w]...]}
  var status = null;
  var offset = 0;                         // server clock - browser clock, seconds
  var connection = {state: "connecting", since: Date.now()};
  var overview = null;                    // SenseOverview: the house total, order and shares

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

  // top: the scale shared by every sparkline, or null for the plug's own largest value.
  function drawSpark(entry, top) {
    var t1 = now(), t0 = t1 - WINDOW;
    var pts = entry.points;
    while (pts.length > 1 && pts[1][0] <= t0) pts.shift();
    // A history younger than 10 minutes fills the width (at least the last second).
    if (pts.length && pts[0][0] > t0) t0 = Math.min(pts[0][0], t1 - 1);
    var max = 0;
    pts.forEach(function (p) { max = Math.max(max, p[1]); });
    var svg = entry.spark;
    svg.setAttribute("data-points", String(pts.length));
    svg.setAttribute("data-top", String(scale(top === null ? max : top)));
    svg.firstChild.setAttribute("points", steps(pts, t0, t1, 300, sparkY(scale(top === null
      ? max : top))));
  }

  function drawSparks() {
    plugs.forEach(function (e) {      // drop what left the window before the scale is taken
      while (e.points.length > 1 && e.points[1][0] <= now() - WINDOW) e.points.shift();
    });
    var top = overview ? overview.sparkTop() : null;
    plugs.forEach(function (entry) { drawSpark(entry, top); });
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
    var share = el("div", "share");
    var bar = el("div", "share-bar");
    bar.setAttribute("aria-hidden", "true");
    bar.appendChild(el("span"));
    share.appendChild(bar);
    share.appendChild(el("small", "share-text"));
    node.appendChild(share);
    var spark = svgEl("svg", {"class": "spark", viewBox: "0 0 300 40",
                              preserveAspectRatio: "none", role: "img",
                              "aria-label": "last 10 minutes"});
    spark.appendChild(svgEl("polyline", {"vector-effect": "non-scaling-stroke"}));
    node.appendChild(spark);
    if (p.mutable) node.appendChild(controls(p));
    return {data: p, card: node, spark: spark, points: []};
  }

  // A button whose name includes the plug ("On - Laundry Dryer"); only "On" is shown.
  function button(cls, text, alias, type) {
    var node = el("button", cls, text);
    node.type = type || "button";
    node.appendChild(el("span", "vh", " - " + alias));
    return node;
  }

  function controls(p) {
    var form = el("form", "controls");
    var input = el("input");
    input.type = "number"; input.min = "0"; input.step = "any"; input.placeholder = "watts";
    input.setAttribute("aria-label", "watts for " + p.alias);
    var set = button("set", "Set", p.alias, "submit");
    var on = button("turn-on", "On", p.alias);
    var off = button("turn-off", "Off", p.alias);
    var note = el("span", "error");
    note.setAttribute("role", "alert");
    form.appendChild(input); form.appendChild(set); form.appendChild(on); form.appendChild(off);
    form.appendChild(note);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (input.value === "") return;
      var value = Number(input.value), most = status && status.max_plug_watts;
      if (!(value >= 0)) {
        note.textContent = "Not changed: enter the watts as a number, 0 or more.";
      } else if (most && value > most) {
        note.textContent = "Not changed: a plug can be set to at most " + watts(most) + ".";
      } else {
        put(p.id, {power: value}, note);
      }
    });
    on.addEventListener("click", function () { put(p.id, {state: "on"}, note); });
    off.addEventListener("click", function () { put(p.id, {state: "off"}, note); });
    return form;
  }

  function put(id, body, note) {
    note.textContent = "";
    fetch("api/plugs/" + encodeURIComponent(id), {
      method: "PUT", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token()}
    }).then(function (r) {
      return r.json().then(function (doc) {
        if (r.status === 401) {
          lock("The token is no longer accepted (was the config changed?). Unlock again.");
        } else if (!r.ok) {
          note.textContent = "Not changed: " + doc.error;
        }
      });
    }).catch(function () { note.textContent = "Not sent: SenseLink cannot be reached."; });
  }

  function showControls() {
    var writable = status && status.writable;
    var unlocked = writable && token() !== "";
    $("unlock").hidden = !writable || unlocked;
    $("locked").hidden = !unlocked;
    document.querySelectorAll("form.controls").forEach(function (f) { f.hidden = !unlocked; });
  }

  function unlock(e) {
    e.preventDefault();
    var given = $("token").value, note = $("unlock-note");
    note.textContent = "";
    fetch("api/token", {headers: {"Authorization": "Bearer " + given}}).then(function (r) {
      if (r.ok) {
        sessionStorage.setItem(TOKEN_KEY, given);
        $("token").value = "";
        showControls();
        $("lock").focus();
      } else if (r.status === 401) {
        note.textContent = "That token is not the one in the config (web: token:). " +
                           "Nothing was unlocked.";
        $("token").focus();
      } else {
        note.textContent = "Nothing was unlocked: no token is configured, so the page is " +
                           "read-only.";
      }
    }).catch(function () {
      note.textContent = "Nothing was unlocked: SenseLink cannot be reached.";
    });
  }

  function lock(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("unlock-note").textContent = message || "";
    showControls();
    if (!message) $("token").focus();
  }

  function updatePlug(entry) {
    var p = entry.data, c = entry.card;
    c.querySelector(".watts").textContent = watts(p.watts);
    var state = c.querySelector(".state");
    state.textContent = "";
    state.appendChild(el("span", p.on ? "on" : "off", p.on ? "on" : "off"));
    state.appendChild(document.createTextNode(p.updated === null ? " · as configured"
                                                                 : " · value " + ago(p.updated)));
    if (p.sense) {
      state.appendChild(document.createTextNode(" · Sense: " + p.sense.carried + "/" +
                                                p.sense.polls + " polls"));
      if (p.sense.warning) state.appendChild(el("span", "warning", " · " + p.sense.warning));
    }
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
    });
    if (!doc.plugs.length) list.appendChild(el("p", "note", "No plugs configured."));
    applyStatus(doc.status);
    overview.snapshot();
    drawSparks();
    if (detail && plugs.has(detail.id)) showParts(detail);
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
      if (detail && detail.id === p.id) {
        detailPoint(detail, p.updated || doc.now, p.watts);
        drawDetail(detail);
      }
    });
    updateTotal();
    overview.changed(doc.now);
    drawSparks();
    if (detail) showParts(detail);
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
    // A card with a line for "never asked" (Kasa clients) is that line until one asks.
    var line = box.querySelector(".idle-line");
    if (line) {
      var idle = r.requests === 0 && r.last_request === null;
      box.classList.toggle("idle", idle);
      line.hidden = !idle;
      dl.hidden = idle;
    }
  }

  function applyStatus(s) {
    status = s;
    offset = s.now - Date.now() / 1000;
    requesters($("sense"), s.sense, "Sense monitor");
    requesters($("kasa"), s.kasa_clients, "Kasa clients");
    var banner = $("banner");
    // The banner's words change only when the silence does (it is announced when it does).
    var key = JSON.stringify([s.silence && s.silence.causes, s.silence && s.silence.since_start,
                              s.started, s.target, s.silence && s.sense.last_request]);
    if (s.silence && key !== banner.getAttribute("data-key")) {
      banner.setAttribute("data-key", key);
      $("banner-title").textContent = s.silence.since_start
        ? "No Sense request since SenseLink started at " + clock(s.started) + "."
        : "The Sense monitor went quiet at " + clock(s.sense.last_request) +
          ": no request since.";
      var causes = $("banner-causes");
      causes.textContent = "";
      s.silence.causes.forEach(function (c) {
        var li = el("li", c.applies ? "applies" : "", c.text);
        if (c.cause === "target" && s.target) li.textContent += " (target: " + s.target + ")";
        causes.appendChild(li);
      });
      banner.hidden = false;
    } else if (!s.silence) {
      banner.hidden = true;
      banner.removeAttribute("data-key");
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

  // The counters of Sense and Kasa clients and the sources' last values moved.
  function activityEvent(doc) {
    if (!status) return;
    status.now = doc.now;
    status.sense = doc.sense;
    status.kasa_clients = doc.kasa_clients;
    status.not_allowed = doc.not_allowed;
    doc.sources.forEach(function (t, i) { if (status.sources[i]) status.sources[i].last_update = t; });
    applyStatus(status);
  }

  function statusEvent(doc) {
    energyEvent(doc);
    applyStatus(doc.status);
  }

  function energyEvent(doc) {
    Object.keys(doc.energy).forEach(function (id) {
      var entry = plugs.get(id);
      if (!entry) return;
      var e = doc.energy[id];
      entry.data.energy = {today_kwh: e[0], month_kwh: e[1], total_kwh: e[2]};
      updatePlug(entry);
    });
    Object.keys(doc.sense || {}).forEach(function (id) {
      var entry = plugs.get(id);
      if (!entry) return;
      entry.data.sense = doc.sense[id];
      updatePlug(entry);
    });
  }

  // ------------------------------------------------------------------ detail view

  var detail = null;          // {id, now, recent, minutes, days, charts, watts, parts}

  function detailId() {
    var m = /^#plug=(.*)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function route() {
    var id = detailId(), box = $("detail");
    if (id === null || !plugs.has(id)) {
      detail = null;
      if (box.open) box.close();
      return;
    }
    if (detail && detail.id === id) return;
    detail = openDetail(plugs.get(id).data);
    if (!box.open) box.showModal();
    loadDetail(detail, false);
  }

  // The dialog's content for plug p, built once; updates change text and charts in place,
  // so focus stays where it is.
  function openDetail(p) {
    var body = $("detail-body");
    body.textContent = "";
    $("detail-title").textContent = p.alias;
    var d = {id: p.id, now: null, recent: [], minutes: [], days: [], charts: {}};
    d.watts = el("p", "big", watts(p.watts));
    body.appendChild(d.watts);
    if (p.elements && p.elements.length) {
      body.appendChild(el("h3", "", "Parts"));
      d.parts = el("ul", "parts");
      body.appendChild(d.parts);
    }
    [["recent", "Last 10 minutes", "watts over the last 10 minutes"],
     ["day", "Last 24 hours (per minute: min to max, and mean)", "watts over the last 24 hours"],
     ["days", "Last 30 days (kWh per day)", "energy per day over the last 30 days"]
    ].forEach(function (c) {
      d.charts[c[0]] = SenseCharts.figure(body, "chart-" + c[0], c[1], c[2]);
    });
    var links = el("p", "downloads");
    links.appendChild(document.createTextNode("Download as CSV: "));
    [["history.csv", "24 hours per minute"], ["days.csv", "kWh per day"]].forEach(function (f, i) {
      var a = el("a", "", f[1]);
      a.href = "api/plugs/" + encodeURIComponent(p.id) + "/" + f[0];
      a.setAttribute("download", "");
      if (i) links.appendChild(document.createTextNode(" · "));
      links.appendChild(a);
    });
    body.appendChild(links);
    showParts(d);
    return d;
  }

  function showParts(d) {
    if (!d.parts) return;
    var p = plugs.get(d.id).data;
    d.parts.textContent = "";
    p.elements.forEach(function (id) {
      var part = plugs.get(id);
      var li = el("li", "", part ? part.data.alias : id);
      li.appendChild(el("span", "value", part ? watts(part.data.watts) : "unknown"));
      d.parts.appendChild(li);
    });
  }

  // The whole history when first opened (or after a long gap), later only what is new.
  function loadDetail(d, update) {
    var since = update && d.now !== null && now() - d.now < 3000;
    var url = "api/plugs/" + encodeURIComponent(d.id) + "/history" +
              (since ? "?since=" + d.now : "");
    fetch(url).then(function (r) { return r.ok ? r.json() : null; }).then(function (doc) {
      if (!doc || detail !== d) return;
      if (since) merge(d, doc); else { d.recent = doc.recent; d.minutes = doc.minutes;
                                       d.days = doc.days; }
      d.now = doc.now;
      drawDetail(d);
    }).catch(function () { /* the stream reports the connection */ });
  }

  function merge(d, doc) {
    if (doc.recent.length) {
      var first = doc.recent[0][0];
      d.recent = d.recent.filter(function (p) { return p[0] < first; }).concat(doc.recent);
    }
    if (doc.minutes.length) {
      var from = doc.minutes[0][0];
      d.minutes = d.minutes.filter(function (m) { return m[0] < from && m[0] > doc.now - 86400; })
        .concat(doc.minutes);
    }
    var days = {};
    doc.days.forEach(function (x) { days[x[0]] = x[1]; });
    var known = d.days.map(function (x) { return x[0]; });
    d.days = d.days.map(function (x) { return x[0] in days ? [x[0], days[x[0]]] : x; });
    doc.days.forEach(function (x) { if (known.indexOf(x[0]) < 0) d.days.push(x); });
    d.days = d.days.slice(-30);
  }

  // A change of the open plug from the stream: a point of its last 10 minutes.
  function detailPoint(d, t, w) {
    var last = d.recent[d.recent.length - 1];
    if (last && t - last[0] < 1) last[1] = w; else d.recent.push([t, w]);
    while (d.recent.length > 1 && d.recent[1][0] <= t - WINDOW) d.recent.shift();
  }

  function drawDetail(d) {
    var p = plugs.get(d.id);
    if (p) d.watts.textContent = watts(p.data.watts);
    var t = d.now === null ? now() : Math.max(d.now, now());
    var c = d.charts, since = "SenseLink started" + (status && status.started ? " at " +
      SenseCharts.hhmm(status.started) : " recently");
    var t0 = t - WINDOW;
    if (d.recent.length && d.recent[0][0] > t0) t0 = Math.min(d.recent[0][0], t - 60);
    SenseCharts.draw(c.recent.svg, {kind: "step", points: d.recent, t0: t0, t1: t, unit: "W",
                                    empty: "No values yet: " + since},
                     c.recent.readout);
    var mins = d.minutes.filter(function (m) { return m[0] > t - 86400; });
    var first = mins.length ? mins[0][0] : t;
    SenseCharts.draw(c.day.svg, {kind: "band", points: mins, t0: Math.min(first, t - 600),
                                 t1: t + 60, unit: "W", blank: mins.length < 2,
                                 empty: "Little history yet: " + since},
                     c.day.readout);
    c.day.note.textContent = mins.length ? "since " + SenseCharts.hhmm(first) +
      "; band: min to max of each minute, line: its mean" : "";
    var none = !d.days.some(function (x) { return x[1] > 0; });
    SenseCharts.draw(c.days.svg, {kind: "bars", points: d.days, unit: "kWh", blank: none,
                                  empty: "No energy counted yet in these 30 days."},
                     c.days.readout);
    c.days.note.textContent = d.days.length ? d.days[0][0] + " to " +
      d.days[d.days.length - 1][0] + " (today, so far)" : "";
  }

  function closeDetail() {
    var id = detail && detail.id;
    detail = null;
    if (detailId() !== null) history.replaceState(null, "", location.pathname + location.search);
    var link = id !== null && document.querySelector("#plug-" + CSS.escape(id) + " .alias");
    if (link) link.focus();
  }

  // ------------------------------------------------------------------ connection

  function connect() {
    var handlers = {snapshot: snapshot, plugs: changed, status: statusEvent,
                    activity: activityEvent, energy: energyEvent};
    SenseLinkStream.start({
      event: function (name, doc) { handlers[name](doc); },
      state: function (state, since) {
        var live = $("live");
        connection = {state: state, since: since};
        live.className = state === "live" ? "ok" : state === "down" ? "bad" : "pending";
        live.textContent = state === "live" ? "live" : state === "down" ? "disconnected"
                                                                         : "connecting…";
        document.body.classList.toggle("offline", state === "down");
        outage();
      }
    });
  }

  // During an outage: how long ago the daemon was last heard, on the page and in the title.
  function outage() {
    var down = connection.state === "down";
    var s = Math.round((Date.now() - connection.since) / 1000);
    var words = s < 90 ? s + " s ago" : Math.round(s / 60) + " min ago";
    $("outage").textContent = down ? words : "";
    document.title = down ? "Disconnected " + words + " · SenseLink" : "SenseLink";
  }

  function tick() {
    plugs.forEach(function (entry) { updatePlug(entry); });
    drawSparks();
    if (status) {
      requesters($("sense"), status.sense, "Sense monitor");
      requesters($("kasa"), status.kasa_clients, "Kasa clients");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("unlock").addEventListener("submit", unlock);
    $("lock").addEventListener("click", function () { lock(); });
    $("detail-close").addEventListener("click", function () { $("detail").close(); });
    $("detail").addEventListener("close", closeDetail);
    window.addEventListener("hashchange", route);
    overview = SenseOverview.create({plugs: plugs, now: now, list: $("plugs"),
      started: function () { return status ? status.started : null; }, redraw: drawSparks});
    var resized = null;
    window.addEventListener("resize", function () {       // charts are drawn at their size
      clearTimeout(resized);
      resized = setTimeout(function () { overview.redraw(); if (detail) drawDetail(detail); }, 200);
    });
    connect();
    setInterval(tick, 5000);
    setInterval(outage, 1000);
    setInterval(function () { if (detail) loadDetail(detail, true); overview.minute(); }, 60000);
  });
})();
