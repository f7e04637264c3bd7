// Hookline console: confirm dialogs and the overview's refresh. No inline
// script anywhere (the Content-Security-Policy forbids it), no dependencies.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  function refresh(live) {
    fetch(live.getAttribute("data-src"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (response.status === 401) {
          window.location.reload();  // signed out or idle: the page goes to sign-in
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (fields) {
        if (!fields) {
          return;
        }
        live.querySelectorAll("[data-live]").forEach(function (element) {
          var value = fields[element.getAttribute("data-live")];
          if (value !== undefined) {
            element.textContent = value;
          }
        });
        live.setAttribute("data-refreshed", new Date().toISOString());
      })
      .catch(function () { /* the next tick tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (!live) {
      return;
    }
    var seconds = parseInt(live.getAttribute("data-every"), 10) || 5;
    window.setInterval(function () { refresh(live); }, seconds * 1000);
  });
}());
