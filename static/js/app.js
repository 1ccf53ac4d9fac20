// Sportello's small progressive enhancements. Every page works without
// this file; the CSP forbids inline script, so behaviours hang on data-*
// attributes.
(function () {
  "use strict";

  // Confirmation before destructive actions: <form data-confirm="…"> or
  // <button data-confirm="…">.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var msg = form.getAttribute("data-confirm");
    var btn = e.submitter;
    if (btn && btn.hasAttribute("data-confirm")) msg = btn.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // Copy buttons: <button data-copy="#id" data-copied-label="Copiato">.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!btn) return;
    var src = document.querySelector(btn.getAttribute("data-copy"));
    if (!src || !navigator.clipboard) return;
    navigator.clipboard.writeText(src.textContent.trim()).then(function () {
      var old = btn.textContent;
      btn.textContent = btn.getAttribute("data-copied-label") || "OK";
      setTimeout(function () { btn.textContent = old; }, 2000);
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    // Move focus to the error summary so screen readers announce it.
    var summary = document.querySelector("[data-autofocus]");
    if (summary) summary.focus();

    // Live preview: inputs with data-preview="name" update every
    // [data-preview-target="name"] (text only, never HTML).
    document.querySelectorAll("[data-preview]").forEach(function (input) {
      var update = function () {
        var name = input.getAttribute("data-preview");
        var value = input.tagName === "SELECT" ? input.options[input.selectedIndex].text : input.value;
        document.querySelectorAll('[data-preview-target="' + name + '"]').forEach(function (el) {
          el.textContent = value;
          el.hidden = value === "";
        });
      };
      input.addEventListener("input", update);
      input.addEventListener("change", update);
    });

    // Selects that submit their form on change (filters).
    document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.requestSubmit(); });
    });
  });
})();
