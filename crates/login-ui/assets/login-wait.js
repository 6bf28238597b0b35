// A waiting step without a click (a push to approve, a QR code to scan): asks every two
// seconds whether the other device answered, then submits the page's own form («J'ai validé»),
// as the person would; and shows the time left when the page has a countdown. Without
// JavaScript, the person clicks that button and reads the time the page states; nothing else
// depends on this script.
(function () {
  "use strict";
  var countdown = document.getElementById("countdown");
  if (countdown) {
    var end = parseInt(countdown.getAttribute("data-expires-at"), 10) || 0;
    var prefix = countdown.getAttribute("data-prefix") || "";
    var tick = function () {
      var left = Math.max(0, Math.round(end - Date.now() / 1000));
      var seconds = left % 60;
      countdown.textContent = prefix + " " + Math.floor(left / 60) + ":" + (seconds < 10 ? "0" : "") + seconds;
      if (left > 0) {
        window.setTimeout(tick, 1000);
      }
    };
    tick();
  }
  var form = document.getElementById("login-wait");
  var button = document.getElementById("login-check");
  if (!form || !button || !window.fetch) {
    return;
  }
  var url = form.getAttribute("data-state");
  var every = parseInt(form.getAttribute("data-poll-ms"), 10) || 2000;
  var until = parseInt(form.getAttribute("data-expires-at"), 10) || 0;
  function ask() {
    if (until && Date.now() / 1000 > until + 5) {
      // Past its life: one last submission shows the page that says so.
      form.requestSubmit ? form.requestSubmit(button) : button.click();
      return;
    }
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { waiting: false }; })
      .then(function (state) {
        if (state.waiting) {
          window.setTimeout(ask, every);
        } else {
          form.requestSubmit ? form.requestSubmit(button) : button.click();
        }
      })
      .catch(function () { window.setTimeout(ask, every * 2); });
  }
  window.setTimeout(ask, every);
})();
