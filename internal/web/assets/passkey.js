// Passkeys need the WebAuthn browser API: the only script of the pages.
// Everything else works without JavaScript. The script fetches the
// ceremony's options from the page's own endpoint (with the form's CSRF
// token), asks the browser for the credential, and posts the answer with
// the same form, so the server decides where to go next.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) { return; }
  var b64 = function (s) { s = s.replace(/-/g, "+").replace(/_/g, "/"); while (s.length % 4) { s += "="; } return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); }).buffer; };
  var enc = function (buf) { var s = ""; new Uint8Array(buf).forEach(function (x) { s += String.fromCharCode(x); }); return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""); };
  function requestOptions(pk) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) { return PublicKeyCredential.parseRequestOptionsFromJSON(pk); }
    pk.challenge = b64(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64(c.id); });
    return pk;
  }
  function creationOptions(pk) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) { return PublicKeyCredential.parseCreationOptionsFromJSON(pk); }
    pk.challenge = b64(pk.challenge);
    pk.user.id = b64(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64(c.id); });
    return pk;
  }
  function toJSON(cred) {
    if (cred.toJSON) { return cred.toJSON(); }
    var r = cred.response, out = { id: cred.id, rawId: enc(cred.rawId), type: cred.type, clientExtensionResults: cred.getClientExtensionResults(), response: { clientDataJSON: enc(r.clientDataJSON) } };
    if (r.attestationObject) { out.response.attestationObject = enc(r.attestationObject); if (r.getTransports) { out.response.transports = r.getTransports(); } }
    if (r.authenticatorData) { out.response.authenticatorData = enc(r.authenticatorData); out.response.signature = enc(r.signature); if (r.userHandle) { out.response.userHandle = enc(r.userHandle); } }
    return out;
  }
  // begin asks the page's endpoint for a ceremony's options, with the
  // form's CSRF token (and, for a sign-in, the typed email when asked).
  async function begin(form, email) {
    var body = new URLSearchParams(new FormData(form));
    if (email) { body.set("email", email); }
    var res = await fetch(form.dataset.begin, { method: "POST", body: body, credentials: "same-origin" });
    var data = await res.json();
    if (!res.ok) { throw new Error(data.error || "The passkey could not be used."); }
    return data;
  }
  function finish(form, cred) {
    form.elements.credential.value = JSON.stringify(toJSON(cred));
    form.submit();
  }
  // Conditional UI: the browser offers the account's passkeys in the
  // email field's autofill (autocomplete="username webauthn"); picking one
  // signs in. The button aborts it, since one request may be pending.
  var pending = null;
  async function autofill(form) {
    if (!PublicKeyCredential.isConditionalMediationAvailable || !(await PublicKeyCredential.isConditionalMediationAvailable())) { return; }
    pending = new AbortController();
    try {
      var data = await begin(form, "");
      var cred = await navigator.credentials.get({ publicKey: requestOptions(data.options.publicKey), mediation: "conditional", signal: pending.signal });
      form.elements.challenge_id.value = data.challenge_id;
      finish(form, cred);
    } catch (e) { /* dismissed or aborted: the form and the button still work */ }
  }
  function wire(form, create) {
    var btn = form.querySelector("button[type=button]"), msg = form.querySelector("[role=status]");
    form.hidden = false;
    btn.addEventListener("click", async function () {
      if (pending) { pending.abort(); pending = null; }
      btn.disabled = true; msg.textContent = "Waiting for your passkey…";
      try {
        var email = document.getElementById("email");
        var data = await begin(form, !create && email ? email.value : "");
        var cred;
        if (create) { cred = await navigator.credentials.create({ publicKey: creationOptions(data.options.publicKey) }); }
        else { form.elements.challenge_id.value = data.challenge_id; cred = await navigator.credentials.get({ publicKey: requestOptions(data.options.publicKey) }); }
        finish(form, cred);
      } catch (e) {
        msg.textContent = e && e.name === "NotAllowedError" ? "The passkey request was cancelled or timed out." : (e && e.message) || "The passkey could not be used.";
        btn.disabled = false;
      }
    });
  }
  var login = document.getElementById("passkey-form");
  if (login) { wire(login, false); autofill(login); }
  var add = document.getElementById("passkey-add");
  if (add) { wire(add, true); }
})();
