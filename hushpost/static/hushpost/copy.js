(function () {
  "use strict";
  // "Copy" buttons: the text of the field named by data-copy, to the clipboard (or selected, to copy by hand).
  var status = document.querySelector("[data-copy-status]");
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      field.focus();
      field.select();
      var done = function (text) { if (status) { status.textContent = text; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { done("Copied."); },
          function () { done("Selected: press Ctrl+C (or ⌘+C) to copy."); });
      } else {
        done("Selected: press Ctrl+C (or ⌘+C) to copy.");
      }
    });
  });
})();
