// botwarden's live pages: the server sends the page's changing part as an "update" event
// (server-sent events); this puts it in place. Without JavaScript the page still works: reload it.
//
// The stream sends an event (an "update", else a "ping") at least every heartbeat (the stale
// note's data-heartbeat, seconds). A page that hears nothing for MISSED heartbeats says its view
// is old and opens the stream again: a hung page server or a connection that died silently (a
// phone's network handoff) raises no error that EventSource would report. A ping says whether
// the server can still read what the page shows ("old": true when it cannot): a stream that pings
// over a frozen view must not look live.
//
// Ages ("3m20s ago", "open for 5m") are <time data-at="UNIX SECONDS"> (or data-since): they are
// counted here every second on the server's clock, whose offset from the browser's is measured
// from the page (<html data-now>), each event's id and each ping's "now" (the browser's clock is
// never taken for the server's). The live part is sent again only when something in it changes,
// and then only the rows that changed ("rows": [[id, html], ...]); an age in the markup itself
// changed at every render and re-sent every page at every read. Without this an age stood still:
// "last result 7s ago" on a page whose agent had been dead for ten minutes. The banner's time
// (<time data-read>) is set from each read's ping ("view_at"): "as of" the last read, not the
// last change.
(function () {
  "use strict";
  var offset = 0;  // server clock - browser clock, ms

  function learn(serverMs) {
    if (!isNaN(serverMs) && serverMs > 0) { offset = serverMs - Date.now(); }
  }
  learn(parseFloat(document.documentElement.getAttribute("data-now")) * 1000);

  function duration(seconds) {  // agent.core.values.format_duration, for seconds >= 1
    var total = Math.round(seconds), out = "";
    [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]].forEach(function (unit) {
      if (total >= unit[1]) { out += Math.floor(total / unit[1]) + unit[0]; total = total % unit[1]; }
    });
    return out || "0s";
  }

  function tick() {
    var now = (Date.now() + offset) / 1000;
    Array.prototype.forEach.call(document.querySelectorAll("time[data-at], time[data-since]"), function (el) {
      var ago = el.hasAttribute("data-at");
      var seconds = Math.max(now - parseFloat(el.getAttribute(ago ? "data-at" : "data-since")), 0);
      if (isNaN(seconds)) { return; }
      var text = ago ? (seconds < 1 ? "just now" : duration(seconds) + " ago") : duration(Math.max(seconds, 1));
      if (el.textContent !== text) { el.textContent = text; }
    });
  }

  function read(viewAt) {
    if (!viewAt) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("time[data-read]"), function (el) {
      if (el.textContent !== viewAt) { el.textContent = viewAt; }
    });
  }

  window.botwardenAges = { learn: learn, tick: tick, read: read };
  tick();
  window.setInterval(tick, 1000);
})();

(function () {
  "use strict";
  var target = document.querySelector("[data-live]");
  if (!target || !window.EventSource) { return; }
  var stale = document.getElementById("stale");
  var MISSED = 2.5;
  var heartbeat = parseFloat(stale && stale.getAttribute("data-heartbeat")) || 15;
  var source = null;
  var watchdog = null;
  var lastHeard = new Date();
  var silentSince = null;

  function say(text) {
    if (!stale) { return; }
    stale.textContent = text;
    stale.hidden = false;
  }

  function heard() {
    lastHeard = new Date();
    silentSince = null;
    if (stale) { stale.hidden = true; }
    window.clearTimeout(watchdog);
    watchdog = window.setTimeout(silent, MISSED * heartbeat * 1000);
  }

  function silent() {
    // No event for MISSED heartbeats: whatever the browser thinks of the connection, the view is old.
    if (silentSince === null) { silentSince = new Date(); }
    say("live updates STOPPED: nothing heard from the page's server since " +
        lastHeard.toISOString().substring(11, 19) + " UTC (it may be hung, or the connection died): " +
        "what you see is old; reconnecting…");
    connect();
    watchdog = window.setTimeout(silent, MISSED * heartbeat * 1000);
  }

  var reconnecting = false;
  function connect() {
    if (source) { source.close(); }
    // The first stream is told which view the page was loaded with (?shown=), and sends nothing
    // while that is still the view; a later one has no such view to rely on and sends it all.
    // (The browser's own reconnection keeps the address: the server tells it by its Last-Event-ID,
    // "<server ms>-<digest of the view shown after that event>", and sends the view if it differs.)
    var url = target.getAttribute("data-live");
    source = new EventSource(reconnecting ? url.split("?")[0] : url);
    reconnecting = true;
    function put(change) {
      var focused = document.activeElement && target.contains(document.activeElement) ? document.activeElement.id : null;
      change();
      window.botwardenAges.tick();  // the ages in it are counted from now on, at once
      if (focused) {
        var again = document.getElementById(focused);
        if (again && again !== document.activeElement) { again.focus(); }
      }
    }
    source.addEventListener("update", function (event) {
      window.botwardenAges.learn(parseFloat(event.lastEventId));
      put(function () { target.innerHTML = event.data; });
      heard();
    });
    source.addEventListener("rows", function (event) {
      // Only these rows changed: each replaces the element with its id. One missing (the page
      // changed under it) means the view is not what the server thinks: start the stream again,
      // which sends the whole part first.
      window.botwardenAges.learn(parseFloat(event.lastEventId));
      var rows = null;
      try { rows = JSON.parse(event.data); } catch (e) { rows = null; }
      var missing = !rows || rows.some(function (row) { return !document.getElementById(row[0]); });
      if (missing) { connect(); return; }
      put(function () {
        rows.forEach(function (row) { document.getElementById(row[0]).outerHTML = row[1]; });
      });
      heard();
    });
    source.addEventListener("ping", function (event) {
      heard();
      // The stream is alive, but the view may be frozen: no snapshot can be made now.
      var ping = null;
      try { ping = JSON.parse(event.data); } catch (e) { ping = null; }
      if (ping && ping.now) { window.botwardenAges.learn(ping.now * 1000); }
      if (ping && !ping.old) { window.botwardenAges.read(ping.view_at); }
      if (ping && ping.old) {
        say("live updates STOPPED: the page's server cannot read its sources (" + (ping.why || "unknown") +
            "): what you see is old, as read at " + (ping.view_at || "?") + " UTC");
      }
    });
    source.addEventListener("done", function () {
      window.clearTimeout(watchdog);
      source.close();
    });
    source.onerror = function () {
      if (!stale) { return; }
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up: the stream answered with something else than events (signed out,
        // or the page's server restarted and forgot the session). Never leave a page that looks live.
        window.clearTimeout(watchdog);
        say("live updates STOPPED (signed out, or the page's server restarted): " +
            "what you see is old; reloading to sign in again…");
        window.setTimeout(function () { window.location.reload(); }, 5000);
      } else if (silentSince === null) {
        say("connection lost: showing the last update; retrying…");
      }
    };
  }

  connect();
  watchdog = window.setTimeout(silent, MISSED * heartbeat * 1000);
})();
