// cks-sim console: live connection states and the trust-anchor upload. Plain JavaScript,
// no libraries. Text from the server is only ever set with textContent.
(function () {
  "use strict";
  var BUSY = { CONNECTING: true, DISCONNECTING: true };

  function cells() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-live-state]"));
  }

  function apply(cell, s) {
    cell.setAttribute("data-live-state", s.state);
    var label = cell.querySelector(".state");
    label.textContent = s.state;
    label.className = "state state-" + s.state;
    var why = cell.querySelector(".why");
    if (s.state === "FAILED" && s.code) {
      why.querySelector(".code").textContent = s.code;
      why.querySelector(".explain").textContent = s.explanation || "";
      why.querySelector(".fix-text").textContent = s.fix || "";
      why.hidden = false;
    } else {
      why.hidden = true;
    }
  }

  function poll() {
    var list = cells();
    if (list.length === 0) return;
    var busy = list.some(function (c) { return BUSY[c.getAttribute("data-live-state")]; });
    fetch("/console/key-stores/states", { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { stores: [] }; })
      .then(function (body) {
        body.stores.forEach(function (s) {
          list.forEach(function (c) { if (c.getAttribute("data-id") === s.id) apply(c, s); });
        });
      })
      .catch(function () {})
      .then(function () { setTimeout(poll, busy ? 300 : 2000); });
  }

  function uploads() {
    document.querySelectorAll("input[type=file][data-fills]").forEach(function (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var target = document.getElementById(input.getAttribute("data-fills"));
        if (!file || !target) return;
        file.text().then(function (t) { target.value = t; });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { uploads(); poll(); });
})();
