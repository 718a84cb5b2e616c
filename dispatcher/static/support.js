// Support console: the bulk replay progress bar (confirmation prompts: confirm.js).
// Loaded as a file (the CSP forbids inline script); every page works without it.
"use strict";

(function () {
  var box = document.getElementById("replay-progress");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (state) {
        document.getElementById("replay-status").textContent = state.status;
        document.getElementById("replay-bar").value = state.percent;
        document.getElementById("replay-done").textContent = String(state.done);
        if (state.reopened !== null) {
          document.getElementById("replay-result").textContent = "; the job re-opened " + state.reopened;
        }
        if (state.status !== "finished" && state.status !== "failed" && state.status !== "gone") {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
