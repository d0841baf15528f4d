// The CometD 9 browser client (npm `cometd`, ES modules) in headless
// Chromium: WebSocket and long-polling, from Bayou's origin and from a
// second one, with a remoteCall answered by the test server's
// /service/echo handler.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBayou, startStatic, launchBrowser, openPage, UNICODE, record, printSummary } from '../harness.mjs';

let browser;
let web;
before(async () => {
  browser = await launchBrowser();
  web = await startStatic();
});
after(async () => {
  await browser?.close();
  await web?.close();
  printSummary('CometD browser client');
});

const CASES = [
  // CometD handshakes over the WebSocket itself: nothing else is needed.
  { name: 'CometD, same origin, WebSocket', sameOrigin: true, websocket: true, all: ['websocket'] },
  { name: 'CometD, cross origin, WebSocket', sameOrigin: false, websocket: true, all: ['websocket'] },
  // Long-polling POSTs application/json to {url}/handshake, /connect, / ...
  { name: 'CometD, same origin, long-polling', sameOrigin: true, websocket: false, all: ['long-polling'] },
  // ... which from another origin needs a preflight, then credentialed CORS.
  {
    name: 'CometD, cross origin, long-polling (CORS)', sameOrigin: false, websocket: false,
    all: ['cors-preflight', 'cross-origin-long-polling'],
  },
];

for (const c of CASES) {
  test(c.name, { timeout: 30_000 }, async () => {
    const t0 = Date.now();
    const bayou = await startBayou();
    const p = await openPage(browser, { bayou, web, name: 'cometd.html', sameOrigin: c.sameOrigin });
    try {
      const pageOrigin = await p.origin();
      assert.equal(pageOrigin === bayou.origin, c.sameOrigin);
      const transport = c.websocket ? 'websocket' : 'long-polling';

      const hs = await p.page.evaluate((websocket) => window.start({ websocket }), c.websocket);
      assert.equal(hs.successful, true, 'handshake');
      assert.equal(hs.transport, transport, 'client transport after the handshake');

      const data = { text: UNICODE, list: [1, 2, 3], t: transport };
      const got = await p.page.evaluate(([ch, d]) => window.roundTrip(ch, d), ['/browser/cometd', data]);
      assert.deepEqual(got, { channel: '/browser/cometd', data });

      // remoteCall('echo') publishes on /service/echo; the server's handler answers.
      const call = await p.page.evaluate((d) => window.call('echo', d), { q: 'ping é 😀' });
      assert.deepEqual(call, { successful: true, data: { echo: { q: 'ping é 😀' } }, channel: '/service/echo', error: undefined });

      assert.equal(await p.page.evaluate(() => window.transport()), transport, 'still on the same transport');
      assert.deepEqual(await p.page.evaluate(() => window.stop()), { successful: true }, 'disconnect');

      const reqs = bayou.requests(p.mark);
      assert.deepEqual(bayou.transports(p.mark), c.all, 'transports the server saw from the page');
      for (const r of reqs) {
        if (r.transport === 'websocket') assert.equal(r.path, '/bayeux');
        if (r.origin) assert.equal(r.origin, pageOrigin);
      }
      if (c.websocket) {
        assert.equal(reqs.length, 1, 'one socket for everything, handshake included');
      } else {
        // CometD's message-type suffixes (cometd-dialect.md 2.2).
        const paths = new Set(reqs.filter((r) => r.method === 'POST').map((r) => r.path));
        for (const path of ['/bayeux/handshake', '/bayeux/connect', '/bayeux/', '/bayeux/disconnect']) {
          assert.ok(paths.has(path), `POST ${path} (saw ${[...paths].join(' ')})`);
        }
      }
      assert.deepEqual(p.errors, [], 'no errors in the page');
      record(c.name, Date.now() - t0, bayou.transports(p.mark), c.websocket ? '' : `(paths: ${[...new Set(reqs.map((r) => r.path))].join(' ')})`);
    } finally {
      await p.close();
      await bayou.stop();
    }
  });
}
