// The formatted-body editor: a contenteditable area whose HTML goes back into
// the form's textarea on submit. The server sanitises whatever arrives.
(function () {
  "use strict";
  document.querySelectorAll("[data-editor]").forEach(function (editor) {
    var field = editor.closest(".editor-field");
    var textarea = field.querySelector("textarea");
    var format = field.querySelector("[data-body-format]");
    var area = editor.querySelector("[contenteditable]");
    var prompt = editor.querySelector(".link-prompt");
    var urlInput = prompt.querySelector("input");
    var savedRange = null;

    if (format.value === "html") {
      // Already sanitised by the server when the page was rendered.
      area.innerHTML = textarea.value;
    } else if (textarea.value) {
      area.innerText = textarea.value;
    }
    editor.hidden = false;
    textarea.hidden = true;
    textarea.removeAttribute("id");
    area.id = area.id || "body-editor";
    document.querySelector("label[for='id_body']").setAttribute("for", area.id);
    format.value = "html";
    try { document.execCommand("defaultParagraphSeparator", false, "p"); } catch (e) { /* older browsers */ }

    function sync() { textarea.value = area.innerHTML; }
    area.addEventListener("input", function () {
      // Chromium types the first line as bare text; as a paragraph like the
      // lines after it, it keeps the same spacing in the editor and once sent.
      var first = area.firstChild;
      if (first && first.nodeType === Node.TEXT_NODE && first.textContent.trim()) {
        document.execCommand("formatBlock", false, "p");
      }
      sync();
    });
    field.closest("form").addEventListener("submit", sync);

    editor.querySelectorAll("[data-cmd]").forEach(function (button) {
      button.addEventListener("mousedown", function (e) { e.preventDefault(); });
      button.addEventListener("click", function () {
        var cmd = button.getAttribute("data-cmd");
        if (cmd === "createLink") {
          var sel = window.getSelection();
          savedRange = sel.rangeCount ? sel.getRangeAt(0).cloneRange() : null;
          prompt.hidden = false;
          urlInput.value = "https://";
          urlInput.focus();
          return;
        }
        area.focus();
        document.execCommand(cmd, false, button.getAttribute("data-arg") || null);
        sync();
      });
    });

    function closePrompt() { prompt.hidden = true; area.focus(); }
    prompt.querySelector("[data-link-ok]").addEventListener("click", function () {
      var url = urlInput.value.trim();
      area.focus();
      if (savedRange) {
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(savedRange);
      }
      if (/^(https?:\/\/|mailto:)/i.test(url)) {
        if (!savedRange || savedRange.collapsed) {
          var a = document.createElement("a");
          a.href = url;
          a.textContent = url;
          document.execCommand("insertHTML", false, a.outerHTML);
          sync();
          closePrompt();
          return;
        }
        document.execCommand("createLink", false, url);
        sync();
      }
      closePrompt();
    });
    prompt.querySelector("[data-link-cancel]").addEventListener("click", closePrompt);
    urlInput.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); prompt.querySelector("[data-link-ok]").click(); }
      if (e.key === "Escape") { e.preventDefault(); closePrompt(); }
    });
  });
})();
