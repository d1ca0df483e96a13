// graphhooks dashboard: a little unobtrusive JavaScript. Every page works without it; with it,
// the Test buttons open a dialog that sends the sample and follows the delivery's first attempt,
// secrets can be copied, and destructive forms ask first. Embedded in the binary.
(function () {
  'use strict';

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute('content') : '';

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }

  // Forms that ask before they act.
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  });

  // Copy buttons.
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.addEventListener('click', function () {
      var target = document.querySelector(button.getAttribute('data-copy'));
      if (!target || !navigator.clipboard) return;
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.textContent = 'Copied';
        setTimeout(function () { button.textContent = 'Copy'; }, 2000);
      }, function () {});
    });
  });

  // The Test dialog.
  var dialog = document.getElementById('test-dialog');
  if (!dialog || typeof dialog.showModal !== 'function') return;
  var form = document.getElementById('test-form');
  var valueBox = document.getElementById('test-value');
  var objectId = document.getElementById('test-object-id');
  var fieldName = document.getElementById('test-field-name');
  var result = document.getElementById('test-result');
  var send = document.getElementById('test-send');
  var opener = null;
  var run = 0;

  function show(kind, title, lines) {
    result.className = kind;
    result.textContent = '';
    result.appendChild(el('strong', {}, [title]));
    (lines || []).forEach(function (line) { result.appendChild(line); });
  }

  document.querySelectorAll('a[data-test]').forEach(function (link) {
    link.addEventListener('click', function (event) {
      event.preventDefault();
      opener = link;
      run += 1;
      fieldName.textContent = link.getAttribute('data-test');
      valueBox.value = link.getAttribute('data-sample') || '';
      objectId.value = '0';
      form.setAttribute('action', link.getAttribute('href'));
      result.className = '';
      result.textContent = '';
      send.disabled = false;
      dialog.showModal();
      valueBox.focus();
    });
  });

  dialog.querySelectorAll('[data-close]').forEach(function (button) {
    button.addEventListener('click', function () { dialog.close(); });
  });
  dialog.addEventListener('close', function () {
    run += 1;
    if (opener) opener.focus();
  });

  function describe(delivery) {
    var attempt = delivery.attempts[delivery.attempts.length - 1];
    var lines = [];
    var what = attempt.status !== null && attempt.status !== undefined
      ? 'HTTP ' + attempt.status + ' in ' + attempt.latency_ms + ' ms'
      : (attempt.error || 'no response');
    lines.push(el('p', {}, ['Attempt ' + attempt.number + ': ' + what]));
    if (attempt.error && attempt.status !== null && attempt.status !== undefined) {
      lines.push(el('p', {}, [attempt.error]));
    }
    if (attempt.response) {
      lines.push(el('p', {}, ['Your server answered: ', el('code', {}, [attempt.response.slice(0, 300)])]));
    }
    return lines;
  }

  function follow(info, myRun, deadline) {
    if (myRun !== run) return;
    fetch(info.status_url, { headers: { 'Accept': 'application/json' }, credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (delivery) {
        if (myRun !== run) return;
        var link = el('p', {}, [el('a', { href: info.log_url }, ['Open delivery #' + info.delivery_id + ' in the log'])]);
        if (delivery.attempts.length > 0 && delivery.state === 'delivered') {
          show('ok', 'Delivered to your server', describe(delivery).concat([link]));
          send.disabled = false;
        } else if (delivery.attempts.length > 0 && delivery.state !== 'pending') {
          show('bad', 'Not delivered (' + delivery.state + ')', describe(delivery).concat([link]));
          send.disabled = false;
        } else if (delivery.attempts.length > 0) {
          show('bad', 'Your server did not accept it; graphhooks will retry', describe(delivery).concat([link]));
          send.disabled = false;
        } else if (Date.now() > deadline) {
          show('wait', 'Still queued', [el('p', {}, ['No attempt yet. It will show in the log when it is made.']), link]);
          send.disabled = false;
        } else {
          setTimeout(function () { follow(info, myRun, deadline); }, 400);
        }
      })
      .catch(function (error) {
        if (myRun !== run) return;
        show('bad', 'Could not read the delivery', [el('p', {}, [String(error.message || error)])]);
        send.disabled = false;
      });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var myRun = ++run;
    send.disabled = true;
    show('wait', 'Sending…', []);
    var body = new URLSearchParams(new FormData(form));
    fetch(form.getAttribute('action'), {
      method: 'POST',
      headers: { 'Accept': 'application/json', 'X-CSRF-Token': csrf },
      body: body,
      credentials: 'same-origin'
    })
      .then(function (response) {
        return response.json().catch(function () { return { error: 'HTTP ' + response.status }; });
      })
      .then(function (info) {
        if (myRun !== run) return;
        if (info.error) {
          show('bad', 'Not sent', [el('p', {}, [info.error])]);
          send.disabled = false;
          return;
        }
        show('wait', 'Queued as delivery #' + info.delivery_id + '; waiting for the first attempt…', []);
        // Bounded: a delivery attempt ends within graphhooks's delivery timeout.
        follow(info, myRun, Date.now() + 30000);
      })
      .catch(function (error) {
        if (myRun !== run) return;
        show('bad', 'Not sent', [el('p', {}, [String(error.message || error)])]);
        send.disabled = false;
      });
  });
})();
