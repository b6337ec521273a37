// kycpipe console: the little the pages need beyond HTML. Everything works
// without it; with it, live views update over Server-Sent Events, relative
// times stay current, and a dead-letter page can be selected at once.
(function () {
  'use strict';

  var rtf = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat('en', { numeric: 'auto' }) : null;

  function relative(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) { return ''; }
    var s = Math.round((t - Date.now()) / 1000);
    var a = Math.abs(s);
    if (a < 5) { return 'just now'; }
    if (!rtf) { return ''; }
    if (a < 60) { return rtf.format(s, 'second'); }
    if (a < 3600) { return rtf.format(Math.round(s / 60), 'minute'); }
    if (a < 172800) { return rtf.format(Math.round(s / 3600), 'hour'); }
    return rtf.format(Math.round(s / 86400), 'day');
  }

  function refreshRelative(root) {
    var els = (root || document).querySelectorAll('[data-rel-hint]');
    for (var i = 0; i < els.length; i++) {
      var r = relative(els[i].getAttribute('data-rel-hint'));
      if (r) { els[i].textContent = r; }
    }
  }

  function live(el) {
    if (!window.EventSource) { return; }
    var url = el.getAttribute('data-live');
    var name = el.getAttribute('data-live-event');
    var mode = el.getAttribute('data-live-mode');
    var max = parseInt(el.getAttribute('data-live-max') || '0', 10);
    var state = document.querySelector('[data-live-state="' + (name === 'decision' ? 'decisions' : name) + '"]');
    function setState(text, cls) {
      if (!state) { return; }
      state.textContent = text;
      state.className = 'live-state ' + (cls || '');
    }
    setState('Connecting…');
    var es = new EventSource(url);
    es.addEventListener('open', function () { setState('Live: updates appear as they happen.', 'on'); });
    es.addEventListener('error', function () {
      if (es.readyState === EventSource.CLOSED) {
        setState('Disconnected: reload the page (your session may have ended).', 'off');
      } else {
        setState('Reconnecting…', 'off');
      }
    });
    es.addEventListener(name, function (e) {
      if (mode === 'replace') {
        el.innerHTML = e.data;
      } else {
        var empty = el.querySelector('tr.empty');
        if (empty) { empty.parentNode.removeChild(empty); }
        el.insertAdjacentHTML('afterbegin', e.data);
        if (el.firstElementChild) { el.firstElementChild.classList.add('fresh'); }
        while (max > 0 && el.children.length > max) { el.removeChild(el.lastElementChild); }
      }
      refreshRelative(el);
    });
  }

  function selectAll(box) {
    var name = box.getAttribute('data-select-all');
    var form = box.form;
    if (!form) { return; }
    box.hidden = false;
    box.addEventListener('change', function () {
      var items = form.querySelectorAll('input[type=checkbox][name="' + name + '"]');
      for (var i = 0; i < items.length; i++) { items[i].checked = box.checked; }
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    var lives = document.querySelectorAll('[data-live]');
    for (var i = 0; i < lives.length; i++) { live(lives[i]); }
    var boxes = document.querySelectorAll('[data-select-all]');
    for (var j = 0; j < boxes.length; j++) { selectAll(boxes[j]); }
    refreshRelative(document);
    window.setInterval(function () { refreshRelative(document); }, 30000);
  });
}());
