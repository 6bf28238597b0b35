// Passkeys and security keys (WebAuthn): hands the server's options to the browser, then posts
// the authenticator's answer in the page's own form (`webauthn_response`), for the login page
// and the wallet's enrolment alike (`data-mode`: `get` or `create`). The options and the answer
// are WebAuthn's JSON forms (binary fields in base64url), converted by the browser itself.
// When the browser or the authenticator refuses, the page says so and the person may start
// again or choose another way to sign in; nothing else on the page depends on this script.
(function () {
  "use strict";
  var form = document.getElementById("passkey-form");
  var start = document.getElementById("passkey-start");
  var field = document.getElementById("webauthn_response");
  if (!form || !start || !field) {
    return;
  }
  var alert = document.getElementById("passkey-error");
  var status = document.getElementById("passkey-status");
  var creating = form.getAttribute("data-mode") === "create";

  function fail(message) {
    if (status) {
      status.textContent = "";
    }
    if (alert) {
      alert.querySelector("p").textContent = message;
      alert.hidden = false;
      alert.focus();
    }
    start.disabled = false;
  }

  // WebAuthn's JSON dictionaries take absent members, not nulls.
  function withoutNulls(value) {
    if (Array.isArray(value)) {
      return value.map(withoutNulls);
    }
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (k) {
        if (value[k] !== null) {
          out[k] = withoutNulls(value[k]);
        }
      });
      return out;
    }
    return value;
  }

  var PKC = window.PublicKeyCredential;
  var parse = PKC && (creating ? PKC.parseCreationOptionsFromJSON : PKC.parseRequestOptionsFromJSON);
  if (!parse || !navigator.credentials) {
    fail(form.getAttribute("data-unsupported"));
    start.disabled = true;
    return;
  }

  start.addEventListener("click", function () {
    start.disabled = true;
    if (alert) {
      alert.hidden = true;
    }
    if (status) {
      status.textContent = form.getAttribute("data-working");
    }
    var ceremony;
    try {
      var publicKey = parse.call(PKC, withoutNulls(JSON.parse(form.getAttribute("data-options"))));
      ceremony = creating ? navigator.credentials.create({ publicKey: publicKey })
                          : navigator.credentials.get({ publicKey: publicKey });
    } catch (e) {
      fail(form.getAttribute("data-refused"));
      return;
    }
    ceremony.then(function (credential) {
      if (!credential || typeof credential.toJSON !== "function") {
        throw new Error("no credential");
      }
      field.value = JSON.stringify(credential.toJSON());
      form.submit();
    }).catch(function () {
      fail(form.getAttribute("data-refused"));
    });
  });
})();
