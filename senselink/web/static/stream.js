// SenseLink status page: one event stream (/api/events) for all tabs of a browser.
//
// A browser opens at most 6 connections to a host over HTTP/1.1, so a stream per tab
// leaves the 7th tab blank. The tab holding the Web Lock reads the stream and passes
// every event to the other tabs over a BroadcastChannel; when it closes, the lock
// passes to another tab, which opens the stream (its first event is a snapshot for
// all). A tab that joins starts from api/snapshot. Without Web Locks (a page served
// over plain http from another host is not a secure context), each tab reads its own
// stream while it is shown and closes it while it is hidden.
"use strict";
var SenseLinkStream = (function () {
  var RETRY = 2000;                     // ms before a stream the browser gave up is reopened

  // on.event(name, document) for each event; on.state(state, sinceMs) for
  // "connecting", "live" and "down" (since: Date.now() of the change).
  function start(on) {
    var scope = "senselink " + new URL("api/events", location.href).pathname;
    if (window.BroadcastChannel && navigator.locks && navigator.locks.request) {
      shared(on, scope);
    } else {
      own(on);
    }
  }

  // An EventSource on api/events feeding emit(name, document) and state(state).
  function open(emit, state) {
    var source = new EventSource("api/events");
    ["snapshot", "plugs", "status", "activity", "energy"].forEach(function (name) {
      source.addEventListener(name, function (e) { emit(name, JSON.parse(e.data)); });
    });
    source.onopen = function () { state("live"); };
    source.onerror = function () {
      state("down");
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(function () { if (!source.stopped) replace(); }, RETRY);
      }
    };
    var handle = {close: function () { source.stopped = true; source.close(); }};
    function replace() {
      var next = open(emit, state);
      handle.close = next.close;
    }
    return handle;
  }

  function tracker(report) {
    var current = null, since = Date.now();
    return function (state) {
      if (state === current) return;
      current = state;
      since = Date.now();
      report(current, since);
    };
  }

  function shared(on, scope) {
    var channel = new BroadcastChannel(scope);
    var leading = false;
    var state = "connecting", since = Date.now();
    var waiting = [];                   // events that came while the snapshot was fetched
    var seen = false;                   // a snapshot was delivered
    function deliver(name, doc) {
      if (name === "snapshot") seen = true;
      on.event(name, doc);
    }
    function setState(s, at) { state = s; since = at; on.state(s, at); }
    channel.onmessage = function (m) {
      var d = m.data;
      if (d.kind === "hello") {
        if (leading) channel.postMessage({kind: "state", state: state, since: since});
      } else if (leading) {
        return;
      } else if (d.kind === "event") {
        if (waiting) waiting.push(d); else deliver(d.name, d.data);
      } else if (d.kind === "state") {
        setState(d.state, d.since);
      }
    };
    on.state(state, since);
    channel.postMessage({kind: "hello"});
    fetch("api/snapshot").then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) { caughtUp(doc); }, function () { caughtUp(null); });
    function caughtUp(doc) {
      var later = waiting || [];
      waiting = null;
      if (doc && !seen && !later.some(function (d) { return d.name === "snapshot"; })) {
        deliver("snapshot", doc);
        later = later.filter(function (d) { return d.data.now > doc.now; });
      }
      later.forEach(function (d) { deliver(d.name, d.data); });
    }
    navigator.locks.request(scope, function () {
      leading = true;
      waiting = null;
      open(function (name, doc) {
        deliver(name, doc);
        channel.postMessage({kind: "event", name: name, data: doc});
      }, tracker(function (s, at) {
        setState(s, at);
        channel.postMessage({kind: "state", state: s, since: at});
      }));
      return new Promise(function () {});     // held while this tab is open
    });
  }

  function own(on) {
    var report = tracker(on.state);
    var stream = null;
    function toggle() {
      if (document.hidden && stream) {
        stream.close();
        stream = null;
      } else if (!document.hidden && !stream) {
        report("connecting");
        stream = open(on.event, report);
      }
    }
    document.addEventListener("visibilitychange", toggle);
    toggle();
  }

  return {start: start};
})();
