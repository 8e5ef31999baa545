// Small behaviours of the workspace: the review timer, drafts kept across reloads, shortcuts.
(function () {
  "use strict";

  function startTimer() {
    var out = document.getElementById("timer");
    if (!out) return;
    var since = Date.parse(out.dataset.since);
    var opened = Date.now();
    var spent = document.getElementById("time_spent_seconds");
    function tick() {
      var seconds = Math.max(0, Math.floor((Date.now() - since) / 1000));
      var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
      out.textContent = (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s).padStart(2, "0");
      if (spent && !spent.dataset.fixed) spent.value = String(seconds);
    }
    tick();
    setInterval(tick, 1000);
    return opened;
  }

  // A draft of the form in localStorage, restored on reload and dropped when it is submitted.
  function keepDraft(form) {
    var key = form.dataset.draftKey;
    if (!key || !window.localStorage) return;
    var saved = null;
    try { saved = JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { saved = null; }
    var serverFilled = Array.prototype.some.call(form.elements, function (el) {
      return (el.type === "radio" && el.checked) || (el.tagName === "TEXTAREA" && el.value);
    });
    if (saved && !serverFilled) {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || !(el.name in saved) || el.type === "hidden") return;
        if (el.type === "radio") el.checked = saved[el.name] === el.value;
        else el.value = saved[el.name];
      });
      var note = document.createElement("p");
      note.className = "muted";
      note.setAttribute("role", "status");
      note.textContent = "Your unsaved draft was restored.";
      form.insertBefore(note, form.firstChild);
    }
    function save() {
      var data = {};
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.type === "hidden" || el.type === "submit") return;
        if (el.type === "radio") { if (el.checked) data[el.name] = el.value; }
        else data[el.name] = el.value;
      });
      localStorage.setItem(key, JSON.stringify(data));
    }
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    form.addEventListener("submit", function () { localStorage.removeItem(key); });
  }

  function typing(target) {
    return target && (target.tagName === "TEXTAREA" ||
      (target.tagName === "INPUT" && !/^(radio|checkbox|button|submit)$/.test(target.type)));
  }

  function shortcuts(form) {
    var rows = Array.prototype.slice.call(form.querySelectorAll(".criterion-row"));
    var current = -1;
    function focusRow(i) {
      if (!rows.length) return;
      current = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach(function (r, n) { r.classList.toggle("current", n === current); });
      var select = rows[current].querySelector("select");
      if (select) select.focus();
    }
    function movePreference(step) {
      var radios = Array.prototype.slice.call(form.querySelectorAll("input[name=preference]"));
      var at = radios.findIndex(function (r) { return r.checked; });
      var from = at < 0 ? Math.floor(radios.length / 2) : at;  // unset: start from the tie
      var next = Math.max(0, Math.min(radios.length - 1, from + step));
      radios[next].checked = true;
      radios[next].dispatchEvent(new Event("change", { bubbles: true }));
    }
    function verdict(value) {
      var radio = form.querySelector("input[name=verdict][value=" + value + "]");
      if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
    }
    document.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
      var select = event.target && event.target.tagName === "SELECT" ? event.target : null;
      if (select && /^[0-9]$/.test(event.key)) {
        var option = Array.prototype.find.call(select.options, function (o) { return o.value === event.key; });
        if (option) { select.value = option.value; select.dispatchEvent(new Event("change", { bubbles: true })); event.preventDefault(); }
        return;
      }
      var handled = true;
      switch (event.key) {
        case "j": focusRow(current + 1); break;
        case "k": focusRow(current - 1); break;
        case "[": movePreference(-1); break;
        case "]": movePreference(1); break;
        case "a": verdict("approve"); break;
        case "c": verdict("request_changes"); break;
        case "x": verdict("reject"); break;
        case "r": var r = document.getElementById("rationale"); if (r) r.focus(); break;
        case "?": var help = document.getElementById("shortcuts"); if (help) { help.open = !help.open; } break;
        default: handled = false;
      }
      if (handled) event.preventDefault();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    startTimer();
    var form = document.querySelector("form[data-draft-key]");
    if (form) keepDraft(form);
    var keyed = document.querySelector("form[data-shortcuts]");
    if (keyed) shortcuts(keyed);
  });
})();
