// Live updates for the Avtomatika console: an element with data-live
// listens on that Server-Sent Events stream and, on each change, reloads
// its content from data-refresh with htmx (at most once per interval).
(function () {
  "use strict";

  function keepOpen(el) {
    var open = [];
    el.querySelectorAll("details[id][open]").forEach(function (d) { open.push(d.id); });
    return function () {
      open.forEach(function (id) {
        var d = document.getElementById(id);
        if (d) { d.open = true; }
      });
    };
  }

  function live(el) {
    var url = el.getAttribute("data-live");
    var refresh = el.getAttribute("data-refresh");
    var pending = false;
    var busy = false;
    function reload() {
      if (busy) { pending = true; return; }
      busy = true;
      var restore = keepOpen(el);
      htmx.ajax("GET", refresh, { target: el, swap: "innerHTML" }).then(function () {
        restore();
        busy = false;
        if (pending) { pending = false; reload(); }
      }, function () { busy = false; });
    }
    var timer = null;
    var source = new EventSource(url);
    source.addEventListener("change", function () {
      if (timer === null) {
        timer = setTimeout(function () { timer = null; reload(); }, 150);
      }
    });
    // A change between the page's render and the stream's (re)connection
    // is not sent: reload once the stream is open to catch up.
    source.addEventListener("open", function () { document.body.classList.add("live"); reload(); });
    source.addEventListener("error", function () { document.body.classList.remove("live"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var csrf = document.body.getAttribute("data-csrf");
    document.body.addEventListener("htmx:configRequest", function (e) {
      if (csrf) { e.detail.headers["X-CSRF-Token"] = csrf; }
    });
    document.querySelectorAll("[data-live]").forEach(live);
  });
})();
