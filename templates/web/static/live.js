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
    if (stale && source.readyState !== EventSource.CLOSED) { stale.hidden = false; }
  };
})();
