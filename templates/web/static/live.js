// botwarden's live pages: the server sends the page's changing part as an "update" event
// (server-sent events); this puts it in place. Without JavaScript the page still works: reload it.
(function () {
  "use strict";
  var target = document.querySelector("[data-live]");
  if (!target || !window.EventSource) { return; }
  var stale = document.getElementById("stale");
  var source = new EventSource(target.getAttribute("data-live"));
  source.addEventListener("update", function (event) {
    var focused = document.activeElement && target.contains(document.activeElement) ? document.activeElement.id : null;
    target.innerHTML = event.data;
    if (focused) {
      var again = document.getElementById(focused);
      if (again) { again.focus(); }
    }
    if (stale) { stale.hidden = true; }
  });
  source.addEventListener("done", function () { source.close(); });
  source.onerror = function () {
    if (!stale) { return; }
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up: the stream answered with something else than events (signed out,
      // or the page's server restarted and forgot the session). Never leave a page that looks live.
      stale.textContent = "live updates STOPPED (signed out, or the page's server restarted): " +
        "what you see is old; reloading to sign in again…";
      stale.hidden = false;
      window.setTimeout(function () { window.location.reload(); }, 5000);
    } else {
      stale.hidden = false;
    }
  };
})();
