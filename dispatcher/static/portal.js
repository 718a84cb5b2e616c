// Publisher portal: macro palette, live preview and lint, POST body toggle, backfill progress.
// Loaded as a file (the CSP forbids inline script); every page works without it, this only makes it live.
"use strict";

(function () {
  function csrfToken(form) {
    var field = form.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  function setText(element, text) {
    if (element) element.textContent = text;
  }

  // --- Macro palette: insert at the cursor of the template field used last (the URL by default).
  function setupPalette(form) {
    var lastField = form.querySelector("#url");
    form.querySelectorAll("textarea.template").forEach(function (field) {
      field.addEventListener("focus", function () { lastField = field; });
    });
    document.querySelectorAll("#palette .macro").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = lastField;
        if (!field) return;
        var token = button.getAttribute("data-token");
        var start = field.selectionStart === undefined ? field.value.length : field.selectionStart;
        var end = field.selectionEnd === undefined ? start : field.selectionEnd;
        field.value = field.value.slice(0, start) + token + field.value.slice(end);
        field.focus();
        field.setSelectionRange(start + token.length, start + token.length);
        field.dispatchEvent(new Event("input", { bubbles: true }));
      });
    });
  }

  // --- Live preview and lint, from the server (the same checks that run on save).
  // What would be sent; while a template has errors, its bad parts marked (text nodes only: never HTML).
  function renderSent(element, text, pieces, empty) {
    if (!element) return;
    element.replaceChildren();
    if (text) { element.textContent = text; return; }
    if (!pieces || !pieces.length) { element.textContent = empty; return; }
    pieces.forEach(function (piece) {
      if (!piece.problem) { element.append(piece.text); return; }
      var mark = document.createElement("mark");
      mark.className = "bad";
      mark.title = piece.problem;
      mark.textContent = piece.text;
      element.append(mark);
    });
  }

  function renderPreview(data) {
    setText(document.getElementById("preview-method"), data.method);
    renderSent(document.getElementById("preview-url"), data.url, data.url_marked, "—");
    var body = document.getElementById("preview-body");
    if (body) {
      renderSent(body, data.body, data.body_marked, "");
      body.classList.toggle("hidden", !data.body && !(data.body_marked && data.body_marked.length));
    }
    var list = document.getElementById("findings");
    if (!list) return;
    list.replaceChildren();
    var hasUrlError = false;
    (data.findings || []).forEach(function (finding) {
      var item = document.createElement("li");
      item.className = "finding finding-" + finding.severity;
      var label = document.createElement("span");
      label.className = "severity";
      label.textContent = finding.severity;
      item.append(label, " " + finding.message);
      list.append(item);
      if (finding.field === "url" && finding.severity === "error") hasUrlError = true;
    });
    if (!list.children.length) {
      var ok = document.createElement("li");
      ok.className = "finding finding-ok";
      ok.textContent = "No problems found.";
      list.append(ok);
    }
    var url = document.getElementById("url");
    if (url) url.setAttribute("aria-invalid", hasUrlError ? "true" : "false");
  }

  function setupPreview(form) {
    var endpoint = form.getAttribute("data-preview-url");
    var timer = null;
    var sequence = 0;
    function refresh() {
      var mine = ++sequence;
      fetch(endpoint, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRFToken": csrfToken(form), Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data && mine === sequence) renderPreview(data); })
        .catch(function () { /* offline: the last preview stays; saving still checks everything */ });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
    form.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 50);
    });
    // The preview's status is outside the form (form="..."): its changes do not bubble to it.
    var status = document.getElementById("preview-status");
    if (status) status.addEventListener("change", refresh);
  }

  // --- The body fieldset only matters for POST.
  function setupMethod(form) {
    var fieldset = document.getElementById("post-body");
    function update() {
      var chosen = form.querySelector("input[name=method]:checked");
      if (fieldset) fieldset.classList.toggle("collapsed", !chosen || chosen.value !== "POST");
    }
    form.querySelectorAll("input[name=method]").forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
  }

  // --- Backfill: start the job in the background and follow its progress until it is done.
  function setupBackfill() {
    var form = document.getElementById("backfill-form");
    if (!form) return;
    var box = document.getElementById("backfill-progress");
    var bar = document.getElementById("backfill-bar");
    var text = document.getElementById("backfill-text");
    var statusUrl = form.getAttribute("data-status-url");
    var poll = null;
    function show(state) {
      if (!state) return;
      box.classList.remove("hidden");
      bar.max = Math.max(state.total || 0, 1);
      bar.value = state.done || 0;
      text.textContent = state.state + ": " + state.done + " of " + state.total +
        " events checked (each sale and each later status change), " + state.created + " queued (since " + String(state.since).slice(0, 10) + ").";
      if (state.state === "done" && poll) { clearInterval(poll); poll = null; }
    }
    function follow() {
      if (poll) return;
      poll = setInterval(function () {
        fetch(statusUrl, { credentials: "same-origin" })
          .then(function (response) { return response.json(); })
          .then(show)
          .catch(function () {});
      }, 1000);
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRFToken": csrfToken(form), Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (data.error) {
            box.classList.remove("hidden");
            text.textContent = data.error;
            return;
          }
          if (data.state === "done") {  // Redis could not take the job: the request ran it
            show({ state: "done", done: data.events, total: data.events, created: data.created, since: data.since });
            return;
          }
          show({ state: "queued", done: 0, total: 0, created: 0, since: data.since });
          follow();
        })
        .catch(function () { form.submit(); });
    });
    // A backfill started earlier (or in another tab) that is still going: keep following it.
    if (/^(queued|running)/.test(text.textContent.trim())) follow();
  }

  // "Copy" buttons name the element whose text they copy; the status beside them says it worked.
  function setupCopy() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        var status = button.parentNode.querySelector("[data-copied]");
        if (!source || !navigator.clipboard) return;
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          if (status) status.textContent = "Copied.";
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopy();
    var form = document.getElementById("postback-form");
    if (form) {
      setupPalette(form);
      setupPreview(form);
      setupMethod(form);
    }
    setupBackfill();
  });
})();
