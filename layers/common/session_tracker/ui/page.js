// Link the timeline and the lists: hovering a call or a turn highlights its twin.
(function () {
  function pair(attr) {
    document.querySelectorAll("[" + attr + "]").forEach(function (el) {
      var id = el.getAttribute(attr);
      var twins = document.querySelectorAll("[" + attr + '="' + id + '"]');
      el.addEventListener("mouseenter", function () { twins.forEach(function (t) { t.classList.add("hl"); }); });
      el.addEventListener("mouseleave", function () { twins.forEach(function (t) { t.classList.remove("hl"); }); });
    });
  }
  pair("data-call");
  pair("data-turn");
  // Keep the page's own scroll: jump the list column, not the window, to a clicked marker.
  document.querySelectorAll("a.marker, a.speech").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      var target = document.getElementById(a.getAttribute("href").slice(1));
      if (!target) { return; }
      ev.preventDefault();
      target.scrollIntoView({ behavior: "smooth", block: "center" });
    });
  });
})();
