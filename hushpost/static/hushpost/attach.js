// Attachments: pick or drop files; each uploads at once (encrypted by the
// server as it arrives) with its own progress bar, and the form carries only
// the stored files' ids. Sending waits until every upload has finished.
(function () {
  "use strict";
  var box = document.querySelector(".attachments[data-upload-url]");
  if (!box || !window.XMLHttpRequest || !window.FormData) { return; }
  var form = box.closest("form");
  var input = box.querySelector("input[type=file]");
  var list = box.querySelector(".file-list");
  var zone = box.querySelector(".dropzone");
  var url = box.getAttribute("data-upload-url");
  var maxFile = parseInt(box.getAttribute("data-max-file-mb"), 10) * 1024 * 1024;
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  var busy = 0;

  // With script, files never travel with the form itself: it posts as a plain form, which the
  // server reads without parsing a multipart body (its CSRF check reads the token from it).
  input.removeAttribute("name");
  form.enctype = "application/x-www-form-urlencoded";
  box.classList.add("enhanced");

  function sizeLabel(bytes) {
    var units = ["bytes", "KB", "MB", "GB"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return (i === 0 ? bytes : bytes.toFixed(1)) + " " + units[i];
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  var maxMessage = parseInt(box.getAttribute("data-max-message-mb"), 10) * 1024 * 1024;

  function setBusy(delta) {
    busy += delta;
    form.querySelectorAll("button[type=submit], [data-opens]").forEach(function (b) {
      b.setAttribute("aria-disabled", busy > 0 ? "true" : "false");
    });
    box.classList.toggle("uploading", busy > 0);
    if (busy === 0) { notice("uploads-pending", ""); }
  }

  // One short message per kind under the list; empty text removes it.
  function notice(kind, text) {
    var note = box.querySelector("." + kind);
    if (!text) { if (note) { note.remove(); } return; }
    if (!note) {
      note = el("p", "field-error " + kind);
      note.setAttribute("role", "alert");
      box.appendChild(note);
    }
    note.textContent = text;
  }

  function checkTotal() {
    var total = 0;
    list.querySelectorAll(".file-item[data-size]").forEach(function (item) {
      total += parseInt(item.dataset.size, 10) || 0;
    });
    notice("total-over", total > maxMessage ? "These files come to more than " +
      box.getAttribute("data-max-message-mb") + " MB, the most your organisation allows on one message. Remove some before sending." : "");
  }

  function removable(item, name, label) {
    var remove = item.querySelector(".file-remove") || el("button", "link-button file-remove");
    remove.type = "button";
    remove.textContent = label || "Remove";
    remove.setAttribute("aria-label", (label || "Remove") + " " + name);
    if (!remove.parentNode) { item.insertBefore(remove, item.querySelector(".file-progress, .file-error")); }
  }

  function upload(file) {
    var item = el("li", "file-item uploading");
    var name = el("span", "file-name", file.name);
    var size = el("span", "file-size", sizeLabel(file.size));
    var bar = el("progress", "file-progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    item.append(name, size, bar);
    list.appendChild(item);
    removable(item, file.name, "Cancel");
    if (file.size > maxFile) {
      fail(item, bar, file.name + " is larger than " + box.getAttribute("data-max-file-mb") + " MB, the largest file your organisation allows.");
      return;
    }
    var xhr = new XMLHttpRequest();
    item._xhr = xhr;
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");  // errors come back as {"error": ...}
    xhr.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); }
    });
    xhr.addEventListener("load", function () {
      setBusy(-1);
      var data = {};
      try { data = JSON.parse(xhr.responseText); } catch (ignore) { data = {}; }
      if (xhr.status !== 201 || !data.uid) {
        fail(item, bar, data.error || "The file could not be uploaded. Try again.");
        return;
      }
      bar.remove();
      item.classList.remove("uploading");
      item.dataset.uid = data.uid;
      item.dataset.size = data.size;
      name.textContent = data.name;
      var hidden = el("input");
      hidden.type = "hidden"; hidden.name = "attachment"; hidden.value = data.uid;
      item.insertBefore(hidden, name);
      removable(item, data.name);
      checkTotal();
    });
    xhr.addEventListener("error", function () { setBusy(-1); fail(item, bar, "The connection was lost while uploading. Try again."); });
    xhr.addEventListener("abort", function () { setBusy(-1); });
    setBusy(1);
    xhr.send(file);
  }

  function fail(item, bar, message) {
    bar.remove();
    item.classList.remove("uploading");
    item.classList.add("failed");
    removable(item, item.querySelector(".file-name").textContent);
    var error = el("span", "file-error", message);
    error.setAttribute("role", "alert");
    item.appendChild(error);
  }

  function add(files) {
    Array.prototype.forEach.call(files, upload);
  }

  input.addEventListener("change", function () { add(input.files); input.value = ""; });

  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { add(e.dataTransfer.files); }
  });

  list.addEventListener("click", function (e) {
    var button = e.target.closest(".file-remove");
    if (!button) { return; }
    var item = button.closest(".file-item");
    if (item._xhr && item.classList.contains("uploading")) { item._xhr.abort(); }
    if (item.dataset.uid) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url + "/" + encodeURIComponent(item.dataset.uid) + "/discard");
      xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");  // errors come back as {"error": ...}
      xhr.send();
    }
    item.remove();
    checkTotal();
    input.focus();
  });

  // A file dropped beside the zone would replace the page and lose the message.
  ["dragover", "drop"].forEach(function (type) {
    window.addEventListener(type, function (e) {
      if (!zone.contains(e.target) && e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types, "Files") >= 0) {
        e.preventDefault();
      }
    });
  });

  // Sending waits for the uploads: a message never leaves without a file the sender added.
  function waitForUploads(e) {
    e.preventDefault();
    e.stopImmediatePropagation();
    notice("uploads-pending", "Wait until your files have finished uploading.");
  }
  form.addEventListener("submit", function (e) { if (busy > 0) { waitForUploads(e); } }, true);
  form.addEventListener("click", function (e) {
    if (busy > 0 && e.target.closest("[data-opens]")) { waitForUploads(e); }
  }, true);
  window.addEventListener("beforeunload", function (e) {
    if (busy > 0) { e.preventDefault(); e.returnValue = ""; }
  });
})();
