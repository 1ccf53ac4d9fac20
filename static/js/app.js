// Sportello: small progressive enhancements. Every page works without this
// file; behaviours are switched on by data attributes in the templates
// (the CSP forbids inline scripts and style attributes).
//
//   data-confirm="message"        on a form, button or link: ask before going on
//   data-copy="#id"               on a button: copy the element's text
//     data-copied-label="Copiato" label shown for a moment after copying
//   data-autofocus                on an error summary: focus it on load
//   data-preview="name"           on an input: mirror its value into every
//   data-preview-target="name"    element with this target (text only)
//     data-preview-empty="…"      text shown in the target when the input is empty
//   data-autosubmit               on a select: submit its form on change
//
// A form that posts is sent once: while it is on its way, further submits
// are ignored and its buttons show as busy (aria-disabled, not disabled,
// so the pressed button's name and value still go with the form).
//
// Tables in .table-wrap, charts in .chart-scroll and <pre> blocks that
// scroll sideways get a tab stop.
(function () {
  'use strict';

  document.documentElement.classList.add('js');

  // Confirmation before destructive actions. The message can sit on the
  // button that submitted (e.submitter) or on the form itself.
  document.addEventListener('submit', function (e) {
    var form = e.target;
    var btn = e.submitter;
    var msg = (btn && btn.getAttribute('data-confirm')) || form.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) {
      e.preventDefault();
    }
  });
  // Registered after the confirmation above: a submit the person called
  // off leaves the form free.
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (e.defaultPrevented || (form.getAttribute('method') || '').toLowerCase() !== 'post') { return; }
    if (form.hasAttribute('data-submitting')) {
      e.preventDefault();
      return;
    }
    form.setAttribute('data-submitting', '');
    var buttons = form.querySelectorAll('button[type="submit"], button:not([type]), input[type="submit"]');
    Array.prototype.forEach.call(buttons, function (b) { b.setAttribute('aria-disabled', 'true'); });
    // A response that does not leave the page (a download, a stopped
    // request) must not lock the form for good.
    window.setTimeout(function () { release(form); }, 10000);
  });
  function release(form) {
    form.removeAttribute('data-submitting');
    var buttons = form.querySelectorAll('[aria-disabled="true"]');
    Array.prototype.forEach.call(buttons, function (b) { b.removeAttribute('aria-disabled'); });
  }
  // Back to a page kept in the browser's cache: its forms are free again.
  window.addEventListener('pageshow', function (e) {
    if (!e.persisted) { return; }
    Array.prototype.forEach.call(document.querySelectorAll('form[data-submitting]'), release);
  });
  document.addEventListener('click', function (e) {
    var link = e.target.closest && e.target.closest('a[data-confirm]');
    if (link && !window.confirm(link.getAttribute('data-confirm'))) {
      e.preventDefault();
    }
  });

  // Copy to clipboard, with a fallback for pages not served from a secure
  // context (navigator.clipboard is missing there).
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var ta = document.createElement('textarea');
      ta.value = text;
      ta.setAttribute('readonly', '');
      ta.className = 'visually-hidden';
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (err) { ok = false; }
      document.body.removeChild(ta);
      if (ok) { resolve(); } else { reject(new Error('copy failed')); }
    });
  }

  function setupCopy(btn) {
    var original = btn.textContent;
    // A polite live region next to the button tells screen-reader users
    // that the copy worked.
    var status = document.createElement('span');
    status.className = 'visually-hidden';
    status.setAttribute('role', 'status');
    btn.insertAdjacentElement('afterend', status);
    btn.addEventListener('click', function () {
      var target = document.querySelector(btn.getAttribute('data-copy'));
      if (!target) { return; }
      var text = ('value' in target && target.tagName !== 'BUTTON') ? target.value : target.textContent;
      copyText(text.trim()).then(function () {
        var label = btn.getAttribute('data-copied-label') || original;
        btn.textContent = label;
        btn.classList.add('is-copied');
        status.textContent = label;
        window.setTimeout(function () {
          btn.textContent = original;
          btn.classList.remove('is-copied');
          status.textContent = '';
        }, 2000);
      }, function () {
        // Leave the text selected so the person can copy it by hand.
        var range = document.createRange();
        range.selectNodeContents(target);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      });
    });
  }

  // Live preview: text only (textContent), never markup.
  function previewText(input) {
    if (input.type === 'checkbox') { return input.checked ? 'true' : ''; }
    if (input.tagName === 'SELECT') {
      var opt = input.options[input.selectedIndex];
      return opt && opt.value !== '' ? opt.text : '';
    }
    return input.value;
  }
  function updatePreview(input) {
    var name = input.getAttribute('data-preview');
    var text = previewText(input);
    var targets = document.querySelectorAll('[data-preview-target="' + CSS.escape(name) + '"]');
    Array.prototype.forEach.call(targets, function (el) {
      if (input.type === 'checkbox') {
        el.hidden = !input.checked;
        return;
      }
      var empty = el.getAttribute('data-preview-empty');
      el.textContent = text.trim() === '' && empty !== null ? empty : text;
      // Optional links (web site, privacy page) disappear when empty.
      if (el.hasAttribute('data-preview-hide-empty')) { el.hidden = text.trim() === ''; }
    });
  }

  // A scrolling table or code block must be reachable by keyboard (WCAG
  // 2.1.1): only those that really overflow get a tab stop (and tables a
  // name).
  function setupScroller(wrap) {
    if (wrap.scrollWidth <= wrap.clientWidth + 1) {
      // Take back only the tab stop this script added, never the template's.
      if (wrap.hasAttribute('data-js-tabindex')) {
        wrap.removeAttribute('tabindex');
        wrap.removeAttribute('data-js-tabindex');
      }
      return;
    }
    if (!wrap.hasAttribute('tabindex')) {
      wrap.setAttribute('tabindex', '0');
      wrap.setAttribute('data-js-tabindex', '');
    }
    if (wrap.tagName === 'PRE') { return; }
    if (!wrap.hasAttribute('role')) { wrap.setAttribute('role', 'region'); }
    if (!wrap.hasAttribute('aria-label') && !wrap.hasAttribute('aria-labelledby')) {
      var caption = wrap.querySelector('caption');
      var section = wrap.closest('section');
      var heading = section && section.querySelector('h2, h3');
      var h1 = document.querySelector('h1');
      var label = (caption || heading || h1 || {}).textContent;
      if (label) { wrap.setAttribute('aria-label', label.trim()); }
    }
  }

  function init() {
    var summary = document.querySelector('[data-autofocus]');
    if (summary) { summary.focus(); }

    Array.prototype.forEach.call(document.querySelectorAll('[data-copy]'), setupCopy);

    Array.prototype.forEach.call(document.querySelectorAll('[data-preview]'), function (input) {
      var ev = (input.tagName === 'SELECT' || input.type === 'checkbox') ? 'change' : 'input';
      input.addEventListener(ev, function () { updatePreview(input); });
    });

    Array.prototype.forEach.call(document.querySelectorAll('[data-autosubmit]'), function (el) {
      el.addEventListener('change', function () {
        if (!el.form) { return; }
        if (el.form.requestSubmit) { el.form.requestSubmit(); } else { el.form.submit(); }
      });
    });

    var wraps = document.querySelectorAll('.table-wrap, .chart-scroll, pre');
    var checkWraps = function () { Array.prototype.forEach.call(wraps, setupScroller); };
    checkWraps();
    window.addEventListener('resize', checkWraps);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}());
