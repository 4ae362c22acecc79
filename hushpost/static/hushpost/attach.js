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

  // With script, files never travel with the form itself.
  input.removeAttribute("name");
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

  function setBusy(delta) {
    busy += delta;
    form.querySelectorAll("button[type=submit], [data-opens]").forEach(function (b) {
      b.toggleAttribute("aria-disabled", busy > 0);
    });
    box.classList.toggle("uploading", busy > 0);
  }

  function removable(item, name) {
    var remove = el("button", "link-button file-remove", "Remove");
    remove.type = "button";
    remove.setAttribute("aria-label", "Remove " + name);
    item.appendChild(remove);
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
    if (file.size > maxFile) {
      fail(item, bar, file.name + " is larger than " + box.getAttribute("data-max-file-mb") + " MB, the largest file your organisation allows.");
      return;
    }
    var xhr = new XMLHttpRequest();
    item._xhr = xhr;
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrf);
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
      name.textContent = data.name;
      var hidden = el("input");
      hidden.type = "hidden"; hidden.name = "attachment"; hidden.value = data.uid;
      item.insertBefore(hidden, name);
      removable(item, data.name);
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
    var error = el("span", "file-error", message);
    error.setAttribute("role", "alert");
    item.appendChild(error);
    removable(item, item.querySelector(".file-name").textContent);
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
      xhr.send();
    }
    item.remove();
    input.focus();
  });

  // Sending waits for the uploads: a message never leaves without a file the sender added.
  form.addEventListener("submit", function (e) {
    if (busy > 0) {
      e.preventDefault();
      e.stopImmediatePropagation();
      var note = box.querySelector(".uploads-pending") || el("p", "field-error uploads-pending");
      note.textContent = "Wait until your files have finished uploading.";
      note.setAttribute("role", "alert");
      box.appendChild(note);
    }
  }, true);
  form.addEventListener("click", function (e) {
    var button = e.target.closest("[data-opens]");
    if (button && busy > 0) {
      e.preventDefault();
      e.stopImmediatePropagation();
      var note = box.querySelector(".uploads-pending") || el("p", "field-error uploads-pending");
      note.textContent = "Wait until your files have finished uploading.";
      note.setAttribute("role", "alert");
      box.appendChild(note);
    }
  }, true);
  window.addEventListener("beforeunload", function (e) {
    if (busy > 0) { e.preventDefault(); e.returnValue = ""; }
  });
})();
