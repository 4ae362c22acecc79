// The Branding tab's live preview: the accent colour, logo, footer and support contact as they are
// typed or picked. Without script, the form's "Preview" button shows the same preview from the server.
(function () {
  "use strict";
  var form = document.getElementById("branding-form");
  var preview = document.getElementById("brand-preview");
  if (!form || !preview) return;
  var colour = /^#[0-9a-fA-F]{6}$/;

  function luminance(hex) {
    var rgb = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }
  function darker(hex) {
    return "#" + [1, 3, 5].map(function (i) {
      var v = Math.round(parseInt(hex.substr(i, 2), 16) * 0.7).toString(16);
      return v.length < 2 ? "0" + v : v;
    }).join("");
  }

  var accent = form.querySelector("[name=accent]");
  var ratioText = document.getElementById("accent-ratio");
  function showAccent() {
    var value = accent.value.trim();
    if (!colour.test(value)) {
      preview.style.removeProperty("--brand");
      preview.style.removeProperty("--brand-dark");
      ratioText.textContent = value ? "Write the colour as # and six hexadecimal digits." : "";
      return;
    }
    var ratio = Math.floor((1.05 / (luminance(value) + 0.05)) * 100) / 100;
    ratioText.textContent = "Contrast with white: " + ratio.toFixed(2) + ":1, at least 4.5:1 needed" +
      (ratio < 4.5 ? ": too light, it will be refused." : ".");
    preview.classList.add("brand-accent");
    preview.style.setProperty("--brand", value);
    preview.style.setProperty("--brand-dark", darker(value));
  }
  accent.addEventListener("input", showAccent);

  var logo = form.querySelector("[name=logo]");
  var remove = form.querySelector("[name=remove_logo]");
  var img = document.getElementById("preview-logo");
  var orgName = document.getElementById("preview-org");
  function showLogo(src) {
    img.hidden = !src;
    orgName.hidden = !!src;
    if (src) {
      img.removeAttribute("width");
      img.removeAttribute("height");
      img.src = src;
    }
  }
  logo.addEventListener("change", function () {
    var file = logo.files && logo.files[0];
    if (!file) return;
    if (!/^image\/(png|jpeg)$/.test(file.type)) {
      showLogo("");
      return;
    }
    var reader = new FileReader();
    reader.onload = function () { showLogo(reader.result); };
    reader.readAsDataURL(file);
  });
  if (remove) {
    var saved = img.getAttribute("src");
    remove.addEventListener("change", function () { showLogo(remove.checked ? "" : saved); });
  }

  var footer = form.querySelector("[name=footer]");
  var footerText = document.getElementById("preview-footer");
  footer.addEventListener("input", function () {
    footerText.textContent = footer.value.trim();
    footerText.hidden = !footer.value.trim();
  });

  var email = form.querySelector("[name=support_email]");
  var phone = form.querySelector("[name=support_phone]");
  var support = document.getElementById("preview-support");
  function showSupport() {
    var parts = [email.value.trim(), phone.value.trim()].filter(Boolean);
    support.textContent = parts.length ? "Support: " + parts.join(" · ") : "";
    support.hidden = !parts.length;
  }
  email.addEventListener("input", showSupport);
  phone.addEventListener("input", showSupport);
})();
