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
// Live view: poll the fragment with If-None-Match; replace it only when it changed (200),
// keep it on 304. One timer, no history kept: a page left open for hours holds one copy
// of the fragment. Paused while the tab is hidden; backs off (up to 30 s) while failing.
(function () {
  var box = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (!box || !state || !window.fetch) { return; }
  var src = box.getAttribute("data-src");
  var etag = box.getAttribute("data-etag") || "";
  var every = parseInt(box.getAttribute("data-interval") || "2000", 10);
  var delay = every, timer = null, busy = false;
  var text = state.querySelector(".text");
  function show(cls, message) {
    state.className = "live-state " + cls;
    text.textContent = message;
  }
  function stamp() { return new Date().toLocaleTimeString(); }
  function schedule() {
    clearTimeout(timer);
    if (document.hidden) { show("paused", "Paused while this tab is hidden"); return; }
    timer = setTimeout(poll, delay);
  }
  function poll() {
    if (busy) { return; }
    busy = true;
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch(src, { headers: headers, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 304) { return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        etag = r.headers.get("ETag") || "";
        return r.text();
      })
      .then(function (html) {
        if (html !== null) { box.innerHTML = html; }
        delay = every;
        show("on", "Live · updated " + stamp());
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        show("error", "Reconnecting… (retry in " + Math.round(delay / 1000) + " s)");
      })
      .then(function () { busy = false; schedule(); });
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { delay = every; poll(); } else { schedule(); }
  });
  show("on", "Live · updated " + stamp());
  schedule();
})();
