// Live pages: the body's data-live names the change feed's scope ("project=iris", or "" for
// everything) and data-since the change the page was rendered at, so a change made before the
// feed connects is heard too. On a change the feed announces, the page re-fetches its live
// part: htmx listens for "shipyard:change" (see base.html). A burst makes one refresh.
(function () {
  "use strict";
  var scope = document.body.dataset.live;
  if (scope === undefined || !window.EventSource) {
    return;
  }
  var since = document.body.dataset.since;
  var query = [scope, since ? "after=" + since : ""].filter(Boolean).join("&");
  var source = new EventSource("/events" + (query ? "?" + query : ""));
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
