// Ask before a form with data-confirm changes something that is hard to undo
// (reset a password, disable an account, revoke a role). A static file, not an
// inline handler: the Content-Security-Policy forbids inline scripts. Without this
// script the server shows a confirmation page instead (the form lacks "confirmed").
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) {
      return;
    }
    if (!window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      return;
    }
    var flag = form.querySelector("input[name=confirmed]");
    if (flag) {
      flag.value = "1";
    }
  });
})();
