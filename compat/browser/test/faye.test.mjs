// faye 1.4.3's browser bundle, served by Bayou itself, in headless Chromium:
// every transport the browser client picks (faye-wire-protocol.md C2/C3),
// asserted from the server's own log of the requests it received.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  startBayou, startStatic, launchBrowser, openPage, waitUntil, UNICODE, FAYE_BUNDLE, record, printSummary,
} from '../harness.mjs';

let browser;
let web;
before(async () => {
  browser = await launchBrowser();
  web = await startStatic();
});
after(async () => {
  await browser?.close();
  await web?.close();
  printSummary('faye browser client');
});

const payload = (n) => ({ text: UNICODE, n, nested: { list: [1, 'é', null, true], line: 'a\u2028b\u2029c' } });

// The cases of the issue. `all` is the set of transports the server must see
// from the page (exactly); `during` is what it may see while a message goes
// round once the client has settled on `settled` (its /meta/connect type).
const CASES = [
  {
    name: 'same origin, default: WebSocket',
    sameOrigin: true, disable: [], settled: 'websocket',
    all: ['client-script', 'long-polling', 'websocket'], during: [],
  },
  {
    name: 'same origin, WebSocket disabled: EventSource + XHR POSTs',
    sameOrigin: true, disable: ['websocket'], settled: 'eventsource',
    all: ['client-script', 'eventsource', 'long-polling'], during: ['long-polling'],
  },
  {
    name: 'cross origin, default: JSONP handshake, then WebSocket',
    sameOrigin: false, disable: [], settled: 'websocket',
    all: ['callback-polling', 'client-script', 'websocket'], during: [],
  },
  {
    name: 'cross origin, WebSocket disabled: CORS preflight + text/plain POSTs',
    sameOrigin: false, disable: ['websocket'], settled: 'cross-origin-long-polling',
    all: ['callback-polling', 'client-script', 'cors-preflight', 'cross-origin-long-polling'],
    during: ['cross-origin-long-polling'],
  },
  {
    name: 'cross origin, WebSocket and CORS disabled: JSONP for everything',
    sameOrigin: false, disable: ['websocket', 'cross-origin-long-polling'], settled: 'callback-polling',
    all: ['callback-polling', 'client-script'], during: ['callback-polling'],
  },
];

// watch records what the page sends and receives on the mount (Playwright's
// view, for request bodies and response headers).
// Call `await seen.done()` before reading it.
function watch(page, bayeuxURL) {
  const seen = [];
  const pending = [];
  page.on('response', (res) => {
    const req = res.request();
    if (!req.url().startsWith(bayeuxURL)) return;
    pending.push((async () => {
      const entry = { method: req.method(), url: req.url(), reqHeaders: await req.allHeaders(), postData: req.postData(), status: res.status(), headers: await res.allHeaders() };
      if (!(entry.headers['content-type'] || '').startsWith('text/event-stream')) {
        try { entry.body = await res.text(); } catch { /* none available */ }
      }
      seen.push(entry);
    })());
  });
  seen.done = () => Promise.all(pending);
  // inFlight counts HTTP requests to the mount not answered yet (held
  // connects included; EventSource streams never finish and are left out).
  const open = new Set();
  page.on('request', (req) => { if (req.url().startsWith(bayeuxURL) && req.resourceType() !== 'eventsource') open.add(req); });
  page.on('requestfinished', (req) => open.delete(req));
  page.on('requestfailed', (req) => open.delete(req));
  seen.inFlight = () => open.size;
  return seen;
}

// deliveredOverHTTP reports whether a message on channel (not a reply)
// came back in an HTTP response (JSON or JSONP).
function deliveredOverHTTP(http, channel) {
  return http.some((e) => {
    if (!e.body) return false;
    const json = e.body.replace(/^\/\*\*\/[\w$.]+\(/, '').replace(/\);$/, '');
    try {
      return [].concat(JSON.parse(json)).some((m) => m.channel === channel && 'data' in m);
    } catch { return false; }
  });
}

// handshakeOf returns the server's log line of the page's handshake: the
// first request that is not the script and not the WebSocket (faye opens
// its socket while the handshake is in flight, so that line may come first).
const handshakeOf = (reqs) => reqs.find((r) => r.transport !== 'client-script' && r.transport !== 'websocket');

// settle starts faye in the page, subscribes, and waits until the client
// sends through the expected transport, has sent a /meta/connect over it
// (that binds a WebSocket to the session on the server), and no HTTP
// request is pending: a long-poll connect sent before the switch may be
// held for up to the server's timeout, and until it is answered a message
// may legitimately come back in it rather than on the socket. (With the
// polling transports a connect is always pending: nothing to wait for.)
async function settle(p, c, channel, http) {
  await p.page.evaluate((d) => window.startFaye(d), c.disable);
  await p.page.evaluate((ch) => window.subscribe(ch), channel);
  await waitUntil(() => p.page.evaluate((t) => window.transportNow() === t && window.seen.connectTypes.includes(t), c.settled),
    8000, `the client to switch to ${c.settled}`);
  if (c.settled === 'websocket' || c.settled === 'eventsource') {
    await waitUntil(() => http.inFlight() === 0, 8000, 'pending HTTP requests to be answered');
  }
}

for (const c of CASES) {
  test(c.name, { timeout: 30_000 }, async () => {
    const t0 = Date.now();
    const bayou = await startBayou();
    const p = await openPage(browser, { bayou, web, name: 'faye.html', sameOrigin: c.sameOrigin });
    try {
      const http = watch(p.page, bayou.url);
      const pageOrigin = await p.origin();
      assert.equal(pageOrigin === bayou.origin, c.sameOrigin, `page origin ${pageOrigin}, Bayou ${bayou.origin}`);
      assert.equal(await p.page.evaluate(() => Faye.VERSION), '1.4.3');

      const channel = '/browser/' + c.settled;
      await settle(p, c, channel, http);

      // The round trip happens entirely over the settled transport.
      const mark = bayou.mark();
      const got = await p.page.evaluate(([ch, d]) => window.roundTrip(ch, d), [channel, payload(1)]);
      assert.deepEqual(got, payload(1), 'data arrives intact');
      const during = bayou.transports(mark);
      if (c.during.length === 0) assert.deepEqual(during, [], 'no HTTP request during the round trip (all on the socket)');
      else assert.deepEqual(during, c.during, 'transports during the round trip');

      const reqs = bayou.requests(p.mark);
      const all = bayou.transports(p.mark);
      assert.deepEqual(all, c.all, 'transports the server saw from the page');
      const clientId = (await p.page.evaluate(() => window.seen.handshakes))[0];
      assert.ok(clientId, 'handshake succeeded');

      // The client script came from Bayou: <mount>/client.js on its own
      // origin, <mount>.js from the other origin.
      const script = reqs.find((r) => r.transport === 'client-script');
      assert.equal(script.path, c.sameOrigin ? '/bayeux/client.js' : '/bayeux.js');

      // The handshake went over the transport faye requires for it (C2).
      await http.done();
      assert.equal(handshakeOf(reqs).transport, c.sameOrigin ? 'long-polling' : 'callback-polling', 'handshake transport');
      const hs = http.filter((e) => decodeURIComponent(e.postData || e.url).includes('"/meta/handshake"'));
      assert.equal(hs.length, 1, 'one handshake request');
      assert.equal(hs[0].method, c.sameOrigin ? 'POST' : 'GET');

      for (const r of reqs.filter((r) => r.transport === 'websocket')) {
        assert.equal(r.path, '/bayeux');
        assert.equal(r.origin, pageOrigin, 'WebSocket Origin is the page\'s (foreign when cross-origin)');
      }
      for (const r of reqs.filter((r) => r.transport === 'eventsource')) {
        assert.equal(r.path, `/bayeux/${clientId}`, 'EventSource on <mount>/<clientId>');
      }
      let note = '';
      if (c.settled === 'websocket') {
        await http.done();
        assert.ok(!deliveredOverHTTP(http, channel), 'the message came on the socket, not in an HTTP response');
      }
      if (c.settled === 'eventsource') {
        const stream = http.filter((e) => (e.headers['content-type'] || '').startsWith('text/event-stream'));
        assert.equal(stream.length, 1, 'one event stream');
        // Where did the page's own message come back? faye sends
        // [connect, publish] in one POST, and Bayou may answer with the
        // message in that POST's response instead of on the stream (faye's
        // server always uses the stream); the client accepts both.
        note = deliveredOverHTTP(http, channel) ? 'own message came back in the POST response' : 'own message came down the stream';
        // A message published by someone else goes down the stream. (A
        // connect POST in flight at that instant could take it instead, so
        // up to three tries.)
        let viaStream = false;
        for (let i = 0; i < 3 && !viaStream; i++) {
          const data = { from: 'back end', i, text: UNICODE };
          const res = await fetch(bayou.url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ channel, data }) });
          assert.equal(res.status, 200);
          await waitUntil(() => p.page.evaluate(([ch, i]) => window.inbox[ch].some((m) => m.i === i), [channel, i]), 5000, 'the back end\'s message');
          viaStream = await p.page.evaluate((i) => window.streamEvents.some((d) => JSON.parse(d).some((m) => m.data && m.data.i === i)), i);
        }
        assert.ok(viaStream, 'a message arrived on the EventSource stream');
      }
      for (const r of reqs.filter((r) => ['cors-preflight', 'cross-origin-long-polling'].includes(r.transport))) {
        assert.equal(r.origin, pageOrigin);
      }
      if (c.settled === 'cross-origin-long-polling') {
        const posts = http.filter((e) => e.method === 'POST');
        assert.ok(posts.length > 0);
        for (const e of posts) {
          assert.equal(e.reqHeaders['content-type'], 'text/plain;charset=UTF-8', 'CORS POSTs are text/plain');
          assert.match(e.postData, /^message=%5B/, 'form-encoded message=');
          assert.equal(e.headers['access-control-allow-origin'], pageOrigin);
          assert.equal(e.headers['access-control-allow-credentials'], 'true');
        }
      }
      if (c.settled === 'callback-polling') {
        const gets = http.filter((e) => e.method === 'GET' && e.url.includes('jsonp='));
        assert.ok(gets.length >= 3, 'handshake, subscribe/connect, publish over JSONP');
        for (const e of gets) {
          assert.match(e.url, /[?&]jsonp=__jsonp\d+__/);
          assert.equal(e.headers['content-type'], 'text/javascript; charset=utf-8');
          if (e.body !== undefined) {
            assert.match(e.body, /^\/\*\*\/__jsonp\d+__\(\[.*\]\);$/s);
            assert.ok(!/[\u2028\u2029]/.test(e.body), 'U+2028/2029 are escaped in JSONP');
          }
        }
      }
      assert.deepEqual(p.errors, [], 'no errors in the page');
      record(c.name, Date.now() - t0, all, `(round trip: ${during.join(', ') || 'socket frames only'}${note ? '; ' + note : ''})`);
    } finally {
      await p.close();
      await bayou.stop();
    }
  });
}

test('unicode round trip, then a page reload re-handshakes and keeps working', { timeout: 30_000 }, async () => {
  const t0 = Date.now();
  const bayou = await startBayou();
  const c = { disable: [], settled: 'websocket' };
  const p = await openPage(browser, { bayou, web, name: 'faye.html', sameOrigin: false });
  try {
    const http = watch(p.page, bayou.url);
    const channel = '/browser/unicode';
    await settle(p, c, channel, http);
    const text = 'é 😀 \u2028 end';
    for (const s of [text, UNICODE, '\u2029', '😀'.repeat(500)]) {
      const got = await p.page.evaluate(([ch, d]) => window.roundTrip(ch, d), [channel, { s }]);
      assert.equal(got.s, s);
      assert.equal(got.s.length, s.length);
    }
    const first = (await p.page.evaluate(() => window.seen.handshakes))[0];
    const firstMark = p.mark;

    await p.reload();
    const reloadMark = p.mark;
    assert.ok(reloadMark > firstMark);
    await settle(p, c, channel, http);
    const got = await p.page.evaluate(([ch, d]) => window.roundTrip(ch, d), [channel, { s: text, after: 'reload' }]);
    assert.deepEqual(got, { s: text, after: 'reload' });
    const second = (await p.page.evaluate(() => window.seen.handshakes))[0];
    assert.ok(second && second !== first, `a new handshake after the reload (${first} then ${second})`);

    // The server saw the reloaded page handshake again (JSONP) and open a new socket.
    const after = bayou.requests(reloadMark).filter((r) => r.transport !== 'client-script');
    assert.equal(handshakeOf(after).transport, 'callback-polling', 'handshake after reload');
    assert.deepEqual([...new Set(after.map((r) => r.transport))].sort(), ['callback-polling', 'websocket']);
    assert.equal(bayou.requests(firstMark).filter((r) => r.transport === 'websocket').length, 2, 'one socket per page load');
    assert.deepEqual(p.errors, []);
    record('unicode + reload (cross origin, default)', Date.now() - t0, bayou.transports(firstMark), '(after reload: ' + [...new Set(after.map((r) => r.transport))].join(', ') + ')');
  } finally {
    await p.close();
    await bayou.stop();
  }
});

test('client script served by Bayou: <mount>.js and <mount>/client.js, ETag and 304', { timeout: 30_000 }, async () => {
  const t0 = Date.now();
  const bundle = await readFile(FAYE_BUNDLE);
  const bayou = await startBayou();
  try {
    for (const path of ['/bayeux.js', '/bayeux/client.js']) {
      const res = await fetch(bayou.origin + path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
      const etag = res.headers.get('etag');
      assert.ok(etag, 'ETag');
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(bundle), `${path} is the installed faye bundle`);
      const again = await fetch(bayou.origin + path, { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304, 'If-None-Match → 304');
      const since = await fetch(bayou.origin + path, { headers: { 'If-Modified-Since': res.headers.get('last-modified') } });
      assert.equal(since.status, 304, 'If-Modified-Since → 304');
    }
    // And a page of Bayou's origin runs it from <script src="/bayeux/client.js">.
    const p = await openPage(browser, { bayou, web, name: 'faye.html', sameOrigin: true });
    try {
      assert.equal(await p.page.evaluate(() => document.querySelector('script[src]').getAttribute('src')), '/bayeux/client.js');
      assert.equal(await p.page.evaluate(() => typeof Faye.Client), 'function');
      assert.deepEqual(bayou.requests(p.mark).map((r) => `${r.transport} ${r.path}`), ['client-script /bayeux/client.js']);
    } finally {
      await p.close();
    }
  } finally {
    await bayou.stop();
  }

  // Without --client-js those paths are 404 and the server says how to enable them.
  const bare = await startBayou({ clientJs: null });
  try {
    const res = await fetch(bare.origin + '/bayeux/client.js');
    assert.equal(res.status, 404);
    await waitUntil(() => bare.lines.some((l) => l.includes('--client-js')), 2000, 'the hint about --client-js');
  } finally {
    await bare.stop();
  }
  record('client script (ETag/304, 404 without --client-js)', Date.now() - t0, ['client-script']);
});
