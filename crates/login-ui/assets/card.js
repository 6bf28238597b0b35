// CPS card sign-in: hands the login's challenge and the typed PIN to the card agent on this
// computer (the `card-form`'s action: a loopback address), then posts the card's answer (its
// certificates and its signature of the challenge) in the page's second form, to the provider.
// The PIN goes to the agent only, and is cleared from the page once sent. When the agent
// reports a wrong PIN, no card or a blocked card, the page says so and nothing is posted.
// Without this script the first form posts to the agent itself, which answers a page that
// posts the card's answer back: both ways end in the same step.
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  var answer = document.getElementById("card-answer");
  if (!form || !answer || !window.fetch) {
    return;
  }
  var pin = document.getElementById("card-pin");
  var button = document.getElementById("card-sign-in");
  var alert = document.getElementById("card-error");
  var status = document.getElementById("card-status");
  var notice = document.getElementById("card-notice");
  var messages = {};
  try {
    messages = JSON.parse(form.getAttribute("data-messages") || "{}");
  } catch (e) {
    messages = {};
  }

  function say(code, triesLeft) {
    var text = messages[code] || messages.card_error || code;
    if (code === "wrong_pin" && typeof triesLeft === "number") {
      text += " " + (triesLeft === 1 ? messages.tries_one : triesLeft + " " + messages.tries_many);
    }
    status.textContent = "";
    if (notice) {
      notice.hidden = true;
    }
    alert.querySelector("p").textContent = text;
    alert.hidden = false;
    button.disabled = code === "card_blocked";
    if (code === "card_blocked") {
      alert.focus();
    } else {
      pin.value = "";
      pin.focus();
    }
  }

  function field(name, value) {
    answer.querySelector('input[name="' + name + '"]').value = value;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!form.reportValidity()) {
      return;
    }
    var body = JSON.stringify({
      challenge: form.querySelector('input[name="challenge"]').value,
      pin: pin.value
    });
    pin.value = "";
    button.disabled = true;
    alert.hidden = true;
    status.textContent = form.getAttribute("data-working");
    fetch(form.action, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: body,
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      return response.json().then(function (json) {
        return { ok: response.ok, json: json };
      });
    }).then(function (result) {
      var json = result.json || {};
      if (!result.ok || !json.signature || !Array.isArray(json.certificates)) {
        say(json.error || "card_error", json.tries_left);
        return;
      }
      field("card_certificates", json.certificates.join(","));
      field("card_signature", json.signature);
      field("card_algorithm", json.algorithm || "");
      var step = document.createElement("input");
      step.type = "hidden";
      step.name = "step";
      step.value = "submit";
      answer.appendChild(step);
      answer.submit();
    }).catch(function () {
      say("agent_unreachable");
    });
  });
})();
