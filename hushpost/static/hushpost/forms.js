// Every form submits once: a double click on Sign in, Send or Delete sends one
// request. Listening on the document runs after the forms' own handlers, so a
// submit they cancelled (the send-options dialog) does not count.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (e.defaultPrevented) { return; }
    if (form.dataset.submitted) { e.preventDefault(); return; }
    form.dataset.submitted = "1";
    var submitter = e.submitter;
    if (submitter) {
      // After this event, so the submitter's name and value still go with the form.
      setTimeout(function () {
        submitter.disabled = true;
        if (submitter.dataset.busy) { submitter.textContent = submitter.dataset.busy; }
      }, 0);
    }
  });
  // Coming back with the Back button shows the page as it was left: usable again.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) { return; }
    document.querySelectorAll("form[data-submitted]").forEach(function (form) {
      delete form.dataset.submitted;
      form.querySelectorAll("button[disabled]").forEach(function (b) { b.disabled = false; });
    });
  });
})();
