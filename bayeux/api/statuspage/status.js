// Bayou status page: reads status.json every second, shows the figures
// and draws the messages in and out per second of the last two minutes.
//
// Everything from the server is written with textContent, never as HTML:
// channel names come from clients. The API key, when the page is opened
// as status#key=..., is kept in this tab's sessionStorage, removed from
// the address bar, sent only as the X-API-Key header of status.json
// requests, and never written to the console or the page.
'use strict';

(() => {
  const INTERVAL = 1000; // ms between two reads
  const SAMPLES = 120; // points of the chart: two minutes
  const KEY_ITEM = 'bayou-status-key';

  const key = takeKey();
  const points = []; // {t, rateIn, rateOut}, oldest first
  let previous = null;
  let updates = 0;

  // takeKey reads the key from the URL fragment (#key=...), keeps it for
  // this tab and removes it from the address bar.
  function takeKey() {
    const params = new URLSearchParams(location.hash.slice(1));
    let k = params.get('key');
    try {
      if (k) sessionStorage.setItem(KEY_ITEM, k);
      else k = sessionStorage.getItem(KEY_ITEM);
    } catch {
      // storage disabled: the key lives as long as the page
    }
    if (params.has('key')) window.history.replaceState(null, '', location.pathname + location.search);
    return k || '';
  }

  function field(name) {
    return document.querySelector(`[data-field="${name}"]`);
  }

  function set(name, value) {
    const el = field(name);
    if (el) el.textContent = String(value);
  }

  function get(obj, path) {
    return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }

  function duration(seconds) {
    let s = Math.floor(seconds);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return `${d}d ${h}h ${m}m`;
    if (h) return `${h}h ${m}m ${s}s`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function rate(n) {
    return n >= 100 ? String(Math.round(n)) : n.toFixed(1);
  }

  // rows replaces the rows of tbody with one row per item.
  function rows(tbody, items, cells) {
    const out = items.map((item) => {
      const tr = document.createElement('tr');
      for (const text of cells(item)) {
        const td = document.createElement('td');
        td.textContent = String(text);
        tr.appendChild(td);
      }
      return tr;
    });
    if (out.length === 0) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 2;
      td.className = 'none';
      td.textContent = 'none';
      tr.appendChild(td);
      out.push(tr);
    }
    tbody.replaceChildren(...out);
  }

  function show(st) {
    const plain = [
      'sessions', 'subscriptions', 'channels', 'slowConsumerDrops', 'published', 'deliveredTotal',
      'heldConnects', 'queuedBytes', 'clusterSessions', 'received.publish',
      'connections.websocket', 'connections.longPolling', 'connections.callbackPolling', 'connections.eventSource',
      'delivered.websocket', 'delivered.longPolling', 'delivered.callbackPolling', 'delivered.eventSource',
    ];
    for (const name of plain) set(name, get(st, name) ?? '–');
    const c = st.connections;
    set('connectionsTotal', c.websocket + c.longPolling + c.callbackPolling + c.eventSource);
    set('version', st.version || 'version unknown');
    set('uptime', duration(st.uptimeSeconds));
    set('updated', new Date(st.time).toLocaleTimeString());
    if (st.cluster) {
      set('node', st.cluster.node ? `node ${st.cluster.node}` : 'cluster node');
      set('liveNodes', st.cluster.liveNodes);
    } else {
      set('node', 'single node');
      set('liveNodes', 1);
    }
    rows(document.getElementById('topChannels'), st.topChannels, (ch) => [ch.channel, ch.subscribers]);
    rows(document.getElementById('errors'), st.errors, (e) => [e.code, e.count]);
  }

  // sample turns the counters into rates against the previous read.
  function sample(st) {
    const t = Date.parse(st.time);
    if (previous && t > previous.t) {
      const dt = (t - previous.t) / 1000;
      // A counter going down means the server restarted: start again.
      const dIn = st.published - previous.published;
      const dOut = st.deliveredTotal - previous.deliveredTotal;
      if (dIn >= 0 && dOut >= 0) {
        points.push({ t, rateIn: dIn / dt, rateOut: dOut / dt });
        while (points.length > SAMPLES) points.shift();
        set('rateIn', rate(dIn / dt));
        set('rateOut', rate(dOut / dt));
      } else {
        points.length = 0;
      }
    }
    previous = { t, published: st.published, deliveredTotal: st.deliveredTotal };
  }

  function draw() {
    const canvas = document.getElementById('chart');
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(canvas);
    const colorIn = css.getPropertyValue('--in').trim() || '#2563eb';
    const colorOut = css.getPropertyValue('--out').trim() || '#ea580c';
    const grid = css.getPropertyValue('--grid').trim() || '#e5e7eb';
    const text = css.getPropertyValue('--text').trim() || '#6b7280';

    const left = 48;
    const right = w - 8;
    const top = 10;
    const bottom = h - 20;
    const peak = Math.max(1, ...points.map((p) => Math.max(p.rateIn, p.rateOut)));
    const max = niceCeil(peak);
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    g.fillStyle = text;
    g.strokeStyle = grid;
    for (let i = 0; i <= 4; i++) {
      const y = bottom - ((bottom - top) * i) / 4;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(right, y);
      g.stroke();
      const v = (max * i) / 4;
      g.fillText(Number.isInteger(v) ? String(v) : v.toFixed(1), 4, y + 4);
    }
    g.fillText('−2 min', left, h - 4);
    g.fillText('now', right - 22, h - 4);

    const x = (i) => right - ((right - left) * (points.length - 1 - i)) / (SAMPLES - 1);
    const y = (v) => bottom - ((bottom - top) * v) / max;
    for (const [name, color] of [['rateOut', colorOut], ['rateIn', colorIn]]) {
      if (points.length < 2) break;
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      points.forEach((p, i) => (i ? g.lineTo(x(i), y(p[name])) : g.moveTo(x(i), y(p[name]))));
      g.stroke();
    }
    canvas.dataset.samples = String(points.length);
  }

  // niceCeil rounds n up to 1, 2 or 5 times a power of ten.
  function niceCeil(n) {
    const p = 10 ** Math.floor(Math.log10(n));
    for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
    return 10 * p;
  }

  function problem(text) {
    const el = document.getElementById('problem');
    el.textContent = text;
    el.hidden = !text;
    document.body.dataset.state = text ? 'error' : 'ok';
  }

  async function poll() {
    const headers = { Accept: 'application/json' };
    if (key) headers['X-API-Key'] = key;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 5000);
    try {
      const res = await fetch('status.json', {
        headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal: ctl.signal,
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        const why = body && body.error ? body.error.message : res.statusText;
        let hint = '';
        if (res.status === 401) hint = ' Open this page as status#key=YOUR_KEY.';
        if (res.status === 403 && !key) hint = ' Start bayou with --api-key and open this page as status#key=YOUR_KEY.';
        problem(`status.json: ${res.status} ${why}.${hint}`);
        return;
      }
      show(body);
      sample(body);
      draw();
      updates++;
      document.body.dataset.updates = String(updates);
      problem('');
    } catch (e) {
      problem(`status.json: ${e.name === 'AbortError' ? 'no answer within 5 s' : 'the server cannot be reached'}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async function loop() {
    const started = Date.now();
    await poll();
    setTimeout(loop, Math.max(0, INTERVAL - (Date.now() - started)));
  }

  window.addEventListener('resize', draw);
  draw();
  loop();
})();
