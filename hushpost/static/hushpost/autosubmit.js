// A form marked data-autosubmit is sent as soon as the page loads; its button stays for
// browsers without scripts.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (form) { form.submit(); }
})();
