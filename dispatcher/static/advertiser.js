// Advertiser portal: the bulk change's progress bar (confirmation of final status changes: confirm.js).
// Loaded as a file (the CSP forbids inline script); the page works without it (reload to see progress).
"use strict";

(function () {
  var box = document.getElementById("bulk-progress");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  function show(id, value) { document.getElementById(id).textContent = String(value); }
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (state) {
        show("bulk-state", state.status);
        document.getElementById("bulk-bar").value = state.percent;
        show("bulk-done", state.done);
        show("bulk-changed", state.changed);
        show("bulk-skipped", state.skipped);
        if (state.status !== "finished" && state.status !== "failed" && state.status !== "gone") {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
