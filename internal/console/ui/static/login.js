// The console's login form: trades the admin token for a session cookie
// (POST /ui/login) and opens the console.
'use strict';

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById('login-form');
  const message = document.getElementById('message');

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    message.hidden = true;
    let resp;
    try {
      resp = await fetch('/ui/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify({ token: document.getElementById('token').value }),
        cache: 'no-store',
      });
    } catch (err) {
      show('The admin listener did not answer: ' + err.message);
      return;
    }
    if (resp.status === 204) {
      location.replace('/ui/');
      return;
    }
    let text = await resp.text();
    try {
      text = JSON.parse(text).error || text;
    } catch (_) { /* not JSON: show it as it came */ }
    show(text.trim() || ('HTTP ' + resp.status));
  });

  function show(text) {
    message.textContent = text;
    message.className = 'message error';
    message.hidden = false;
  }
})();
