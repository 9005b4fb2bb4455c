// A form with data-submit-once is sent once: a double click or an impatient second
// click while the page loads would otherwise send it twice (e.g. an assignment sent twice).
// The buttons are disabled just after the submit, not during it, so the clicked
// button's own name/value (e.g. "preview") is still part of what is sent. The server
// refuses a resubmission on its own too; this only spares the user the refusal.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-submit-once")) {
      return;
    }
    if (form.dataset.submitted === "1") {
      event.preventDefault();
      return;
    }
    window.setTimeout(function () {
      if (event.defaultPrevented) {
        return; // e.g. the user said no to a data-confirm question
      }
      form.dataset.submitted = "1";
      form.querySelectorAll("button, input[type=submit]").forEach(function (button) {
        button.disabled = true;
      });
    }, 0);
  });
  // Back to a page kept in the browser's cache: the form can be used again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
      delete form.dataset.submitted;
      form.querySelectorAll("button, input[type=submit]").forEach(function (button) {
        button.disabled = false;
      });
    });
  });
})();
