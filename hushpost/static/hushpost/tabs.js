(function () {
  "use strict";
  // A row of tabs narrower than its tabs scrolls sideways: the current tab starts in sight, and a
  // tab reached with the keyboard is brought wholly into sight (a browser leaves a half-shown one).
  document.querySelectorAll("nav.tabs").forEach(function (row) {
    var current = row.querySelector('[aria-current="page"]');
    if (current && row.scrollWidth > row.clientWidth) {
      row.scrollLeft = current.offsetLeft - row.offsetLeft - (row.clientWidth - current.offsetWidth) / 2;
    }
    row.addEventListener("focusin", function (event) {
      event.target.scrollIntoView({block: "nearest", inline: "nearest"});
    });
  });
})();
