// Keyboard and box highlighting for the review page; the page works without it.
(function () {
  "use strict";
  function boxes(field) { return document.querySelectorAll('rect.box[data-field="' + CSS.escape(field) + '"]'); }
  document.addEventListener("focusin", function (e) {
    var field = e.target.getAttribute && e.target.getAttribute("data-field");
    document.querySelectorAll("rect.box.active").forEach(function (r) { r.classList.remove("active"); });
    if (!field) { return; }
    boxes(field).forEach(function (r) {
      r.classList.add("active");
      r.scrollIntoView({block: "nearest", inline: "nearest"});
    });
  });
  document.addEventListener("click", function (e) {
    var field = e.target.getAttribute && e.target.tagName === "rect" && e.target.getAttribute("data-field");
    var input = field && document.getElementById("f:" + field);
    if (input) { input.focus(); }
  });
  document.addEventListener("keydown", function (e) {
    var typing = /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName);
    if (e.key === "Escape" && typing) { e.target.blur(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var form = document.getElementById("review");
    if (e.key === "a" && form) { e.preventDefault(); form.requestSubmit(); }
    else if (e.key === "n") { var next = document.getElementById("next") || document.getElementById("first"); if (next) { next.click(); } }
    else if (e.key === "/") {
      var first = document.querySelector("input.doubtful, select.doubtful, input.refused") || document.querySelector("form#review input:not([type=hidden])");
      if (first) { e.preventDefault(); first.focus(); }
    }
  });
})();
