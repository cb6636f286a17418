// The edgeguard console: one page, a view per hash route, each view polling
// the admin API's JSON once a second while it is shown. Everything read from
// the API is put into the page as text (textContent), never as markup:
// paths, reasons and client names come from whoever sent the request.
'use strict';

(function () {
  const POLL_MS = 1000;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);

  // ---- the admin API ----

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // api calls the admin API with the page's CSRF token and returns the
  // decoded JSON; a non-2xx answer throws an APIError carrying its message.
  async function api(method, path, body) {
    const init = { method, headers: { 'X-CSRF-Token': csrf, Accept: 'application/json' }, cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const text = await resp.text();
    let data;
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = { error: text.trim() };
    }
    if (resp.status === 401) {
      location.assign('/ui/login'); // the session expired or the token changed
    }
    if (!resp.ok) throw new APIError(resp.status, (data && data.error) || ('HTTP ' + resp.status));
    return data;
  }

  // ---- small DOM and format helpers ----

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else if (k === 'onclick') e.addEventListener('click', v);
      else e[k] = v;
    }
    e.append(...children.filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
    return e;
  }

  function when(iso) {
    if (!iso || iso.startsWith('0001-')) return '';
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString(undefined, { hour12: false });
  }

  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString(undefined, { hour12: false });
  }

  function untilText(iso) {
    if (!iso || iso.startsWith('0001-')) return '';
    const s = Math.round((new Date(iso) - Date.now()) / 1000);
    if (s <= 0) return 'now';
    if (s < 90) return 'in ' + s + ' s';
    if (s < 5400) return 'in ' + Math.round(s / 60) + ' min';
    return 'in ' + (s / 3600).toFixed(1) + ' h';
  }

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return n.toFixed(i === 0 ? 0 : 1) + ' ' + units[i];
  }

  function setText(id, text) {
    const e = $(id);
    if (e.textContent !== String(text)) e.textContent = text;
  }

  // message shows a line above the view: kind is 'ok' or 'error'; action,
  // when given, is a button offered with it.
  function message(text, kind, action) {
    const m = $('message');
    m.replaceChildren(text);
    if (action) m.append(' ', action);
    m.className = 'message ' + (kind || 'ok');
    m.hidden = false;
  }

  function clearMessage() {
    $('message').hidden = true;
  }

  // syncTable makes tbody's rows show items, one row per key, in order.
  // A column is {text: item => string} or {node: item => Node, sig: item =>
  // string}. Rows and cells are updated in place and a node cell is rebuilt
  // only when its sig changes, so a button is not swapped out from under a
  // click by the next poll.
  function syncTable(tbody, items, keyOf, columns) {
    const old = new Map(Array.from(tbody.rows, (tr) => [tr.dataset.key, tr]));
    let prev = null;
    for (const item of items) {
      const key = String(keyOf(item));
      let tr = old.get(key);
      if (tr) {
        old.delete(key);
      } else {
        tr = el('tr', { 'data-key': key }, ...columns.map((c) => el('td', { class: c.class || '' })));
      }
      columns.forEach((col, i) => {
        const td = tr.cells[i];
        if (col.text) {
          const t = String(col.text(item) ?? '');
          if (td.textContent !== t) td.textContent = t;
          return;
        }
        const sig = col.sig ? String(col.sig(item)) : '';
        if (!td.firstChild || td.dataset.sig !== sig) {
          td.dataset.sig = sig;
          td.replaceChildren(col.node(item));
        }
      });
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    old.forEach((tr) => tr.remove());
  }

  // ---- overview ----

  const OUTCOMES = [
    { key: 'allowed', label: 'allowed', color: '#3f9b6b' },
    { key: 'shadow', label: 'shadow (would deny)', color: '#d9a23b' },
    { key: 'denied', label: 'denied', color: '#c8463d' },
    { key: 'errors', label: 'errors (5xx)', color: '#7f5aa8' },
  ];
  const STAGE_COLORS = {
    client_ip: '#6c7a89', reputation: '#8e44ad', volumetric: '#e67e22', waf: '#c0392b',
    quota: '#2980b9', forward: '#16a085', shield: '#2c3e50', budget: '#b7950b',
  };
  const SPARE_COLORS = ['#7f8c8d', '#d35400', '#27ae60', '#9b59b6', '#34495e'];

  function legend(id, series) {
    $(id).replaceChildren(...series.map((s) =>
      el('span', { class: 'key' }, el('span', { class: 'swatch', 'data-color': s.color }), s.label)));
    for (const sw of $(id).querySelectorAll('.swatch')) sw.style.background = sw.dataset.color;
  }

  // bins turns the sparse series into one value per step over the window,
  // each the rate per second of pick(point).
  function bins(ov, seconds, pick) {
    const step = ov.step_seconds || 1;
    const end = Math.floor(Date.parse(ov.now) / 1000);
    const n = Math.max(1, Math.floor(seconds / step));
    const start = end - n * step;
    const out = new Array(n).fill(0);
    for (const p of ov.series || []) {
      const i = Math.floor((p.t - start) / step);
      if (i >= 0 && i < n) out[i] += (pick(p) || 0) / step;
    }
    return { values: out, start, step };
  }

  async function pollOverview() {
    const seconds = Number($('overview-window').value) || 900;
    const ov = await api('GET', '/v1/activity/overview?seconds=' + seconds);
    const series = ov.series || [];
    const sum = (f) => series.reduce((a, p) => a + (f(p) || 0), 0);
    // The four outcomes are exclusive: every request is in one.
    const outcomeOf = (p) => (p.allowed || 0) + (p.denied || 0) + (p.shadow || 0) + (p.errors || 0);
    const total = sum(outcomeOf);
    setText('total-requests', total.toLocaleString());
    setText('total-denied', sum((p) => p.denied).toLocaleString());
    const recent = bins(ov, 5, outcomeOf);
    setText('rate-now', EdgeChart.formatRate(recent.values.reduce((a, v) => a + v, 0) / recent.values.length));
    const lat = ov.latency || {};
    setText('latency-p50', lat.p50_ms === undefined ? '–' : lat.p50_ms.toFixed(2) + ' ms');
    setText('latency-p99', lat.p99_ms === undefined ? '–' : lat.p99_ms.toFixed(2) + ' ms');
    setText('latency-note', lat.window_seconds ? 'Latency: from a request\'s arrival to the end of its answer, over the last ' + lat.window_seconds + ' s.' : '');
    setText('active-connections', (ov.active_connections ?? '–').toLocaleString());
    setText('memory', ov.memory_bytes === undefined ? '–' : bytes(ov.memory_bytes));
    $('total-requests').dataset.total = String(total);

    const outcome = OUTCOMES.map((o) => ({ label: o.label, color: o.color, values: bins(ov, seconds, (p) => p[o.key]).values }));
    const b = bins(ov, seconds, () => 0);
    EdgeChart.draw($('chart-outcome'), outcome, b.start, b.step);
    legend('legend-outcome', outcome);

    const stages = Array.from(new Set(series.flatMap((p) => Object.keys(p.by_stage || {})))).sort();
    let spare = 0;
    const byStage = stages.map((s) => ({
      label: s,
      color: STAGE_COLORS[s] || SPARE_COLORS[spare++ % SPARE_COLORS.length],
      values: bins(ov, seconds, (p) => (p.by_stage || {})[s]).values,
    }));
    EdgeChart.draw($('chart-stage'), byStage, b.start, b.step);
    legend('legend-stage', byStage.length ? byStage : [{ label: 'no requests in this window', color: 'transparent' }]);
  }

  // ---- clients ----

  function reputationText(rep) {
    if (!rep || !rep.state || rep.state === 'none') return '';
    let t = rep.state;
    if (rep.until) t += ', ends ' + untilText(rep.until);
    if (rep.source) t += ' · by ' + rep.source;
    return t;
  }

  function banPath(target) {
    return '/v1/bans/' + target.split('/').map(encodeURIComponent).join('/');
  }

  // ban asks for a ban of target; a ban that the API's safety checks
  // refuse (409) is offered again with force.
  async function ban(target, ttl, reason, force) {
    const body = { target, ttl, reason: reason || 'console' };
    if (force) body.force = true;
    try {
      const b = await api('POST', '/v1/bans', body);
      message('Banned ' + b.target + ' until ' + when(b.expires) + '.', 'ok');
    } catch (err) {
      if (err.status === 409) {
        message('Not banned: ' + err.message + '.', 'error',
          el('button', { type: 'button', class: 'danger', onclick: () => ban(target, ttl, reason, true) }, 'Ban anyway'));
      } else {
        message('Not banned: ' + err.message, 'error');
      }
    }
    restart();
  }

  async function lift(target) {
    try {
      await api('DELETE', banPath(target));
      message('Lifted the ban on ' + target + '.', 'ok');
    } catch (err) {
      message('Not lifted: ' + err.message, 'error');
    }
    restart();
  }

  function clientAction(c) {
    const state = c.reputation && c.reputation.state;
    if (state === 'banned') {
      return el('button', { type: 'button', class: 'lift', onclick: () => lift(c.client) }, 'Lift ban');
    }
    if (state === 'allowlisted' || state === 'denylisted') return el('span', { class: 'note' }, 'by list');
    return el('button', { type: 'button', class: 'ban danger', onclick: () => ban(c.client, $('client-ban-ttl').value) }, 'Ban');
  }

  function clientColumns() {
    return [
      { text: (c) => c.client, class: 'mono' },
      { text: (c) => (c.count || 0).toLocaleString(), class: 'num' },
      { text: (c) => (c.error ? '≤ ' + c.error.toLocaleString() : '0'), class: 'num' },
      { text: (c) => reputationText(c.reputation) },
      { node: clientAction, sig: (c) => (c.reputation && c.reputation.state) || 'none' },
    ];
  }

  async function pollClients() {
    const d = await api('GET', '/v1/activity/clients');
    syncTable($('clients-requests').tBodies[0], d.by_requests || [], (c) => c.client, clientColumns());
    syncTable($('clients-denials').tBodies[0], d.by_denials || [], (c) => c.client, clientColumns());
  }

  // ---- WAF and blocked requests ----

  function blockedLink(b) {
    return el('a', { href: '#blocked/' + encodeURIComponent(b.id), class: 'mono' }, b.id);
  }

  function ruleIDs(rules) {
    return (rules || []).map((r) => r.id).join(', ');
  }

  async function pollWAF() {
    const d = await api('GET', '/v1/activity/waf');
    syncTable($('waf-rules').tBodies[0], d.rules || [], (r) => r.id, [
      { text: (r) => r.id, class: 'mono' },
      { text: (r) => r.message },
      { text: (r) => (r.count || 0).toLocaleString(), class: 'num' },
    ]);
    syncTable($('blocked').tBodies[0], d.blocked || [], (b) => b.id, [
      { text: (b) => clock(b.time) },
      { node: blockedLink, sig: (b) => b.id },
      { text: (b) => b.client, class: 'mono' },
      { text: (b) => b.route },
      { text: (b) => b.method + ' ' + b.path, class: 'mono path' },
      { text: (b) => b.stage },
      { text: (b) => b.status, class: 'num' },
      { text: (b) => ruleIDs(b.rules), class: 'mono' },
    ]);
  }

  function ruleList(rules) {
    if (!rules || !rules.length) return el('span', {}, '');
    return el('ul', { class: 'rules' }, ...rules.map((r) =>
      el('li', {}, el('span', { class: 'mono rule-id' }, r.id), ' ', r.message || '')));
  }

  async function pollBlocked(id) {
    setText('blocked-id', id);
    let d;
    try {
      d = await api('GET', '/v1/activity/blocked/' + encodeURIComponent(id));
    } catch (err) {
      if (err.status !== 404) throw err;
      $('blocked-summary').replaceChildren(el('p', { class: 'note' },
        'No blocked request ' + id + ' is remembered: it may have aged out of the recent list.'));
      $('blocked-stages').tBodies[0].replaceChildren();
      return;
    }
    const rows = [
      ['Time', when(d.time)], ['Client', d.client + (d.source ? ' (from ' + d.source + ')' : '')],
      ['Route', d.route], ['Request', d.method + ' ' + d.path], ['Refused by', d.stage],
      ['Status', d.status], ['Reason', d.reason],
    ];
    $('blocked-summary').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v ?? '')]));
    syncTable($('blocked-stages').tBodies[0], d.stages || [], (s) => s.stage, [
      { text: (s) => s.stage },
      { text: (s) => s.verdict },
      { text: (s) => s.reason },
      { node: (s) => ruleList(s.rules), sig: (s) => ruleIDs(s.rules) },
    ]);
    for (const tr of $('blocked-stages').tBodies[0].rows) {
      tr.className = tr.cells[1].textContent === 'deny' ? 'deny' : '';
    }
  }

  // ---- bans ----

  async function pollBans() {
    const d = await api('GET', '/v1/bans');
    syncTable($('bans').tBodies[0], d.bans || [], (b) => b.target, [
      { text: (b) => b.target, class: 'mono' },
      { text: (b) => b.source },
      { text: (b) => b.reason },
      { text: (b) => b.level, class: 'num' },
      { text: (b) => when(b.created) },
      { text: (b) => when(b.expires) + ' (' + untilText(b.expires) + ')' },
      { node: (b) => el('button', { type: 'button', class: 'lift', onclick: () => lift(b.target) }, 'Lift'), sig: (b) => b.target },
    ]);
  }

  $('ban-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    ban(f.target.value.trim(), f.ttl.value.trim() || '1h', f.reason.value.trim());
  });

  // ---- routes and upstreams ----

  function routeSwitch(r) {
    const input = el('input', { type: 'checkbox', checked: !r.closed, title: r.closed ? 'closed: click to open' : 'open: click to close' });
    input.setAttribute('role', 'switch');
    input.setAttribute('aria-label', 'route ' + r.name + ' open');
    input.addEventListener('change', async () => {
      input.disabled = true;
      const path = '/v1/routes/' + encodeURIComponent(r.name) + '/closed';
      try {
        await api(input.checked ? 'DELETE' : 'POST', path);
        message('Route ' + r.name + (input.checked ? ' reopened.' : ' closed: it answers its closed response.'), 'ok');
      } catch (err) {
        message('Route ' + r.name + ': ' + err.message, 'error');
      }
      restart();
    });
    return el('label', { class: 'switch' }, input, el('span', {}, r.closed ? 'closed' : 'open'));
  }

  function waitingRoom(r) {
    if (!r.queue_size) return el('span', { class: 'note' }, r.max_in_flight ? 'none' : 'no limit');
    const bar = el('span', { class: 'bar' }, el('span', { class: 'fill' }));
    bar.firstChild.style.width = Math.min(100, (100 * (r.queued || 0)) / r.queue_size) + '%';
    return el('span', {}, bar, ' ' + (r.queued || 0) + ' / ' + r.queue_size);
  }

  async function pollRoutes() {
    const [rd, ud] = await Promise.all([api('GET', '/v1/routes'), api('GET', '/v1/upstreams')]);
    const tbody = $('routes').tBodies[0];
    syncTable(tbody, rd.routes || [], (r) => r.name, [
      { text: (r) => r.name, class: 'mono' },
      { text: (r) => r.upstream },
      { node: routeSwitch, sig: (r) => (r.closed ? 'closed' : 'open') },
      { text: (r) => (r.in_flight || 0) + (r.max_in_flight ? ' / ' + r.max_in_flight : ''), class: 'num' },
      { node: waitingRoom, sig: (r) => (r.queued || 0) + '/' + (r.queue_size || 0) + '/' + (r.max_in_flight || 0) },
    ]);
    (rd.routes || []).forEach((r, i) => { tbody.rows[i].dataset.closed = String(!!r.closed); });
    renderUpstreams(ud.upstreams || []);
  }

  function renderUpstreams(pools) {
    const box = $('upstreams');
    const want = pools.map((p) => p.name).join('\n');
    if (box.dataset.pools !== want) {
      box.dataset.pools = want;
      box.replaceChildren(...pools.map((p) => el('div', { class: 'pool', 'data-pool': p.name },
        el('h3', {}, ''),
        el('table', {}, el('thead', {}, el('tr', {}, ...['Backend', 'Health', 'Ejected', 'Outstanding', 'Requests', 'Failures', 'Ejections']
          .map((h, i) => el('th', { class: i >= 3 ? 'num' : '' }, h)))), el('tbody')))));
    }
    pools.forEach((p, i) => {
      const div = box.children[i];
      const head = p.name + ' · ' + p.balance + ' · ' + p.available + ' of ' + (p.backends || []).length + ' available';
      if (div.firstChild.textContent !== head) div.firstChild.textContent = head;
      syncTable(div.querySelector('tbody'), p.backends || [], (b) => b.url, [
        { text: (b) => b.url, class: 'mono' },
        { node: (b) => el('span', { class: b.healthy ? 'good' : 'bad' }, b.healthy ? 'healthy' : 'failing checks'), sig: (b) => b.healthy },
        { text: (b) => (b.ejected ? 'until ' + clock(b.ejected_until) : '') },
        { text: (b) => b.outstanding, class: 'num' },
        { text: (b) => (b.requests || 0).toLocaleString(), class: 'num' },
        { text: (b) => (b.failures || 0).toLocaleString(), class: 'num' },
        { text: (b) => b.ejections, class: 'num' },
      ]);
    });
  }

  // ---- routing and polling ----

  const VIEWS = {
    overview: pollOverview,
    clients: pollClients,
    waf: pollWAF,
    blocked: pollBlocked,
    bans: pollBans,
    routes: pollRoutes,
  };
  let current = { name: 'overview', arg: '' };
  let loop = 0;
  let timer = null;

  function parseHash() {
    const h = location.hash.replace(/^#/, '');
    const slash = h.indexOf('/');
    const name = slash < 0 ? h : h.slice(0, slash);
    const arg = slash < 0 ? '' : decodeURIComponent(h.slice(slash + 1));
    return VIEWS[name] ? { name, arg } : { name: 'overview', arg: '' };
  }

  function show() {
    current = parseHash();
    for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + current.name;
    const tab = current.name === 'blocked' ? 'waf' : current.name;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === tab);
    clearMessage();
    // Until the new view's first poll ends, the status line must not show
    // the last view's 'live': a test (or an operator) reading it would take
    // the old view's success for the new one's.
    setText('status', 'loading ' + current.name + '…');
    $('status').classList.remove('error');
    restart();
  }

  // restart polls the current view now and then every POLL_MS; a poll of a
  // view left behind stops its own loop.
  function restart() {
    clearTimeout(timer);
    tick(++loop);
  }

  // tick polls and renders one view. Only the current loop writes the
  // status line, so a poll of a view left behind cannot mark the new one
  // live. A failure is shown there and also reported with console.error: a
  // render bug (a TypeError) is a bug on every page, and the browser's
  // console is where the browser tests collect errors. A 401 is not
  // reported: api() is already sending the page to the login form.
  async function tick(my) {
    const view = current;
    try {
      await VIEWS[view.name](view.arg);
      if (my === loop) {
        setText('status', 'live · ' + new Date().toLocaleTimeString(undefined, { hour12: false }));
        $('status').classList.remove('error');
      }
    } catch (err) {
      if (!(err instanceof APIError && err.status === 401)) {
        console.error('console: the ' + view.name + ' view failed:', err);
      }
      if (my === loop) {
        setText('status', view.name + ': ' + err.message);
        $('status').classList.add('error');
      }
    }
    if (my === loop) timer = setTimeout(() => tick(my), POLL_MS);
  }

  window.addEventListener('hashchange', show);
  $('overview-window').addEventListener('change', restart);
  const logout = $('logout');
  if (logout) {
    logout.addEventListener('click', async () => {
      // No poll after this: it would meet a 401 on its way out.
      clearTimeout(timer);
      loop++;
      await fetch('/ui/logout', { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
      location.assign('/ui/login');
    });
  }
  show();
})();
