// Compose: the Send button opens the send-options dialog; the dialog's
// "Send securely" submits once (a second click does nothing; the server also
// refuses a duplicate through the form's one-time token).
(function () {
  "use strict";
  document.querySelectorAll("[data-opens]").forEach(function (button) {
    var dialog = document.getElementById(button.getAttribute("data-opens"));
    if (!dialog || typeof dialog.showModal !== "function") { return; }
    dialog.removeAttribute("open");
    button.type = "button";
    button.addEventListener("click", function () {
      var form = button.closest("form");
      var to = form.querySelector("[name=to]");
      var subject = form.querySelector("[name=subject]");
      if (to && !to.value.trim()) { to.setAttribute("aria-invalid", "true"); to.focus(); return; }
      if (subject && !subject.value.trim()) { subject.setAttribute("aria-invalid", "true"); subject.focus(); return; }
      dialog.showModal();
    });
    // Enter in a field submits the form through its default button, which is
    // "Send securely" once Send is a plain button: show the options instead,
    // never send with options the sender did not see.
    button.closest("form").addEventListener("submit", function (e) {
      if (!dialog.open) { e.preventDefault(); button.click(); }
    });
  });
  document.querySelectorAll("[data-closes]").forEach(function (button) {
    button.addEventListener("click", function () {
      document.getElementById(button.getAttribute("data-closes")).close();
    });
  });
})();
