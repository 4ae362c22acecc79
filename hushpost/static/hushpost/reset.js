// A password reset link carries its secret after "#", which browsers never send
// to a server. Take it out of the address bar (and so the history) at once,
// whatever the page shows; on the opening page, post it, and the server answers
// with the form to choose a new password.
(function () {
  "use strict";
  var link = window.location.hash.slice(1);
  if (link) { history.replaceState(null, "", window.location.pathname + window.location.search); }
  var form = document.getElementById("reset-link-form");
  if (!form) { return; }
  if (!link) {
    document.getElementById("reset-opening").hidden = true;
    document.getElementById("reset-gone").hidden = false;
    return;
  }
  form.elements.link.value = link;
  form.submit();
})();
