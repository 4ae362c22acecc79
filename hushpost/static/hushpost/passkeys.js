// Passkeys: the browser's side of adding one, signing in with one, and the second step.
// Forms marked data-passkey="add" carry their options; "sign-in" and "second-step" ask the
// server for them first. The answer goes back as JSON text in the "credential" field.
(function () {
  "use strict";
  var NO_SUPPORT = "This browser cannot use passkeys. Use your password instead, or an up-to-date browser.";
  var CANCELLED = "No passkey was used: the request was cancelled or timed out. Try again when you are ready.";
  var ALREADY = "This device already holds a passkey for your account.";
  var UNREACHABLE = "The server could not be reached. Check your connection and try again.";

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    (list || []).forEach(function (item) { item.id = toBuffer(item.id); });
  }

  function creation(options) {
    options.challenge = toBuffer(options.challenge);
    options.user.id = toBuffer(options.user.id);
    withIds(options.excludeCredentials);
    return { publicKey: options };
  }

  function request(options) {
    options.challenge = toBuffer(options.challenge);
    withIds(options.allowCredentials);
    return { publicKey: options };
  }

  function answer(credential) {
    var response = credential.response;
    var out = {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (credential.authenticatorAttachment) { out.authenticatorAttachment = credential.authenticatorAttachment; }
    if (response.attestationObject) {
      out.response.attestationObject = toText(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(response.authenticatorData);
      out.response.signature = toText(response.signature);
      if (response.userHandle) { out.response.userHandle = toText(response.userHandle); }
    }
    return JSON.stringify(out);
  }

  function post(form, fields) {
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    Object.keys(fields).forEach(function (name) { data.append(name, fields[name]); });
    var url = form.getAttribute("action") + (form.dataset.passkey === "add" ? "" : window.location.search);
    return window.fetch(url, {
      method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (reply) {
      if ((reply.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
        // Signed out meanwhile, or the form's token expired: the page the server chose says why.
        window.location.assign(reply.redirected ? reply.url : window.location.href);
        return null;
      }
      return reply.json().then(function (body) {
        if (body.redirect) { window.location.assign(body.redirect); return null; }
        if (!reply.ok) { throw new Error(body.error || UNREACHABLE); }
        return body;
      });
    });
  }

  function explain(problem) {
    if (problem && problem.name === "NotAllowedError") { return CANCELLED; }
    if (problem && problem.name === "AbortError") { return CANCELLED; }
    if (problem && problem.name === "InvalidStateError") { return ALREADY; }
    if (problem && problem.name === "TypeError") { return UNREACHABLE; }
    return (problem && problem.message) || UNREACHABLE;
  }

  function ceremony(form) {
    var kind = form.dataset.passkey;
    if (kind === "add") {
      return navigator.credentials.create(creation(JSON.parse(form.dataset.options)))
        .then(function (credential) { return post(form, { credential: answer(credential) }); });
    }
    return post(form, {}).then(function (options) {
      if (options === null) { return null; }
      return navigator.credentials.get(request(options))
        .then(function (credential) { return post(form, { credential: answer(credential) }); });
    });
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    var error = form.querySelector("[data-passkey-error]");
    var button = form.querySelector("button[type=submit]");
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.hidden = true;
      if (!window.PublicKeyCredential || !navigator.credentials) {
        error.textContent = NO_SUPPORT;
        error.hidden = false;
        return;
      }
      button.disabled = true;
      ceremony(form).catch(function (problem) {
        error.textContent = explain(problem);
        error.hidden = false;
        button.disabled = false;
        button.focus();
      });
    });
  });
})();
