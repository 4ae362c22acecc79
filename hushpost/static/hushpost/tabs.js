(function () {
  "use strict";
  // A row of tabs narrower than its tabs scrolls sideways: the current tab starts in sight.
  document.querySelectorAll("nav.tabs").forEach(function (row) {
    var current = row.querySelector('[aria-current="page"]');
    if (current && row.scrollWidth > row.clientWidth) {
      row.scrollLeft = current.offsetLeft - row.offsetLeft - (row.clientWidth - current.offsetWidth) / 2;
    }
  });
})();
