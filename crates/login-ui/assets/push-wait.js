// The push waiting page without a click: asks every two seconds whether the phone answered,
// then submits the page's own form («J'ai validé sur mon téléphone»), as the person would.
// Without JavaScript, the person clicks that button; nothing else depends on this script.
(function () {
  "use strict";
  var form = document.getElementById("push-wait");
  var button = document.getElementById("push-check");
  if (!form || !button || !window.fetch) {
    return;
  }
  var url = form.getAttribute("data-state");
  var tries = 0;
  function ask() {
    tries += 1;
    if (tries > 45) {
      return;
    }
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { waiting: false }; })
      .then(function (state) {
        if (state.waiting) {
          window.setTimeout(ask, 2000);
        } else {
          form.requestSubmit ? form.requestSubmit(button) : button.click();
        }
      })
      .catch(function () { window.setTimeout(ask, 4000); });
  }
  window.setTimeout(ask, 2000);
})();
