// The run page's log pane: <pre data-log="URL"> follows the stage's log over Server-Sent
// Events (event "log", JSON {text, offset, finished}) and appends what comes until the stage
// is over. The pane is hx-preserve'd, so the live refresh of #main keeps it and its stream;
// when the refresh selects another stage a new pane appears and is followed the same way.
(function () {
  "use strict";
  var followed = [];

  function follow(pane) {
    if (pane.dataset.following || !window.EventSource) {
      return;
    }
    pane.dataset.following = "yes";
    var source = new EventSource(pane.dataset.log);
    followed.push({ pane: pane, source: source });
    source.addEventListener("log", function (event) {
      var chunk = JSON.parse(event.data);
      var atEnd = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
      if (chunk.text) {
        pane.appendChild(document.createTextNode(chunk.text));
      }
      if (atEnd) {
        pane.scrollTop = pane.scrollHeight;
      }
      if (chunk.finished) {
        source.close();  // else EventSource would connect again when the stream ends
        pane.dataset.finished = "yes";
      }
    });
  }

  // On a phone the stage view scrolls sideways: bring the selected stage into it, once per
  // selection, so a refresh does not undo the reader's own scrolling.
  var shown = null;
  function reveal() {
    var stage = document.querySelector(".stage.selected");
    var strip = stage && stage.closest(".stage-wrap");
    if (!strip || stage.id === shown) {
      return;
    }
    shown = stage.id;
    strip.scrollLeft = Math.max(0, stage.offsetLeft - strip.offsetLeft - strip.clientWidth / 3);
  }

  function scan() {
    reveal();
    followed = followed.filter(function (one) {
      if (document.contains(one.pane)) {
        return true;
      }
      one.source.close();  // its stage is no longer shown
      return false;
    });
    document.querySelectorAll("pre[data-log]").forEach(follow);
  }

  scan();
  document.body.addEventListener("htmx:afterSettle", scan);
  window.addEventListener("pagehide", function () {
    followed.forEach(function (one) { one.source.close(); });
  });
})();
