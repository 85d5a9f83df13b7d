// Live pages: the body's data-live names the change feed's scope ("project=iris", or "" for
// everything). On a change the feed announces, the page's marked parts re-fetch themselves:
// htmx listens for "shipyard:change" (see base.html). A burst of changes makes one refresh.
(function () {
  "use strict";
  var scope = document.body.dataset.live;
  if (scope === undefined || !window.EventSource) {
    return;
  }
  var source = new EventSource("/events" + (scope ? "?" + scope : ""));
  var pending = null;
  source.addEventListener("change", function () {
    if (pending !== null) {
      return;
    }
    pending = window.setTimeout(function () {
      pending = null;
      document.body.dispatchEvent(new CustomEvent("shipyard:change", { bubbles: true }));
    }, 100);
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
