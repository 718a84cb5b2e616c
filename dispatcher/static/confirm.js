// Console and advertiser pages: a button with data-confirm asks before it acts (support's replays, an advertiser's decline or
// reversal). Loaded as a file (the CSP forbids inline script); without it the button acts at once.
"use strict";

(function () {
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
