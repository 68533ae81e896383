// Progressive enhancements only: every page works without this file.
(function () {
  "use strict";

  // Any form: ignore a second press while the first is on its way (double-clicked notes).
  document.querySelectorAll("form[method=post]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (f.getAttribute("data-sent")) { ev.preventDefault(); return; }
      f.setAttribute("data-sent", "1");
    });
  });

  // Declare form: disable the button after the first press (the idempotency key makes a
  // second press harmless anyway), and bring live incidents on the chosen services forward.
  var form = document.getElementById("declare-form");
  if (form) {
    form.addEventListener("submit", function () {
      var b = form.querySelector("[data-once]");
      if (b) { setTimeout(function () { b.disabled = true; b.textContent = "Declaring…"; }, 0); }
    });
    var boxes = form.querySelectorAll("[data-service]");
    var items = document.querySelectorAll("#join li[data-services]");
    var refresh = function () {
      var chosen = [];
      boxes.forEach(function (b) { if (b.checked) chosen.push(b.value); });
      items.forEach(function (li) {
        var svcs = (li.getAttribute("data-services") || "").split(" ");
        var hit = chosen.some(function (c) { return svcs.indexOf(c) >= 0; });
        li.classList.toggle("match", hit);
        li.classList.toggle("dim", chosen.length > 0 && !hit);
      });
    };
    boxes.forEach(function (b) { b.addEventListener("change", refresh); });
    refresh();
  }

  // Live pages: refresh the live parts of the dashboard and incident page every few seconds,
  // unless the person is typing in a form.
  var live = document.querySelector("[data-live]");
  if (!live || !window.fetch || !window.DOMParser) return;
  var ids = ["live", "facts", "latest-update", "status-card", "severity-card", "roles", "follow-ups", "timeline", "deliveries"];
  var busy = function () {
    var a = document.activeElement;
    return a && (a.tagName === "TEXTAREA" || a.tagName === "INPUT" || a.tagName === "SELECT");
  };
  setInterval(function () {
    if (document.hidden || busy()) return;
    // The incident page names its own address: after a refused form post the browser shows the
    // POST URL, which cannot be fetched with GET.
    var url = live.getAttribute("data-live") || window.location.href;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        // Merged into another incident meanwhile: follow it there.
        if (r.redirected && r.ok) { window.location.assign(r.url); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var fresh = doc.getElementById(id), old = document.getElementById(id);
          // A region someone has opened (a hand-over form in a <details>) is left as it is.
          if (fresh && old && !old.querySelector("details[open]") && fresh.innerHTML !== old.innerHTML) {
            old.innerHTML = fresh.innerHTML;
          }
        });
      })
      .catch(function () {});
  }, 5000);
})();
