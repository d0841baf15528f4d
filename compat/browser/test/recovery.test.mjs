// faye 1.4.3's browser bundle with Bayou's recovery extension, both loaded
// by the page from Bayou (<script src="/bayeux/extensions/recovery.js">), in
// headless Chromium talking to the bayou binary (--history) through a TCP
// proxy that cuts the page's connections abruptly (resets: no close frame,
// no FIN) while messages are published: the page must get every message
// exactly once, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBayouBinary, startStatic, launchBrowser, openPage, waitUntil, withTimeout, record, printSummary,
} from '../harness.mjs';
import { startCutProxy } from '../../node/cutproxy.mjs';

let browser;
let web;
before(async () => {
  browser = await launchBrowser();
  web = await startStatic();
});
after(async () => {
  await browser?.close();
  await web?.close();
  printSummary('faye + recovery extension in the browser');
});

const N = 300;
const CUTS = 5;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Network failures the cuts cause are expected; anything else the page
// reports (a script error, an HTTP error status) is not.
const cutNoise = /net::ERR_[A-Z_]+|WebSocket connection to .* failed/;

const CASES = [
  { name: 'WebSocket', disable: [], settled: 'websocket' },
  { name: 'WebSocket disabled: EventSource + XHR POSTs', disable: ['websocket'], settled: 'eventsource' },
];

for (const c of CASES) {
  test(`recovery extension, ${c.name}: ${N} messages, ${CUTS} cuts, each once and in order`, { timeout: 90_000 }, async () => {
    const t0 = Date.now();
    const bayou = await startBayouBinary({ timeout: 3, args: ['--history', '/h/**=1000:10m'] });
    const proxy = await startCutProxy(bayou.port);
    // The page's origin is the proxy's: the tab, the scripts and every
    // Bayeux request go through it (openPage's same-origin mode).
    const front = { url: `http://127.0.0.1:${proxy.port}/bayeux`, origin: `http://127.0.0.1:${proxy.port}`, mark: () => 0 };
    let p;
    try {
      p = await openPage(browser, { bayou: front, web, name: 'recovery.html', sameOrigin: true });
      assert.equal(await p.page.evaluate(() => typeof BayouRecovery), 'function', 'the page loaded the extension');
      const channel = `/h/browser/${c.settled}`;
      await p.page.evaluate((d) => window.start(d), c.disable);
      await p.page.evaluate((ch) => window.subscribe(ch), channel);
      await waitUntil(() => p.page.evaluate((t) => window.transportNow() === t && window.seen.connectTypes.includes(t), c.settled),
        8000, `the client to switch to ${c.settled}`);

      const count = () => p.page.evaluate(() => window.got.length);
      const cutAt = [];
      for (let i = 0; i < N; i++) {
        const cutNow = i % 60 === 30 && cutAt.length < CUTS;
        if (cutNow) {
          // Cut once the page is connected again and nearly caught up.
          await waitUntil(async () => proxy.connections() > 0 && (await count()) >= i - 20, 20_000,
            `the page to be connected and catching up before cut ${cutAt.length + 1} (at message ${i})`);
        }
        // Published straight to Bayou, not through the proxy.
        const res = await withTimeout(fetch(bayou.url, {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ channel, data: { seq: i } }),
        }), 5000, `publish ${i}`);
        const ack = await res.json();
        assert.equal(ack[0]?.successful, true, `publish ${i}: ${JSON.stringify(ack)}`);
        // Cut right after the server acknowledged the publish (its copy to
        // the page is then in flight); otherwise pace the publisher.
        if (cutNow) cutAt.push(proxy.cut());
        else await sleep(5);
      }
      await waitUntil(async () => (await count()) >= N, 15_000, `all ${N} messages in the page`).catch(async (e) => {
        const { got, seen, stats, stream } = await p.page.evaluate(() => ({
          got: window.got.map((d) => d.seq), seen: window.seen, stats: window.recovery.stats, stream: window.streamMessages,
        }));
        throw new Error(`${e.message}: got ${got.length} (last ${got.slice(-5)}), ${JSON.stringify({ ...seen, connectTypes: seen.connectTypes.length })}, ` +
          `stats ${JSON.stringify(stats)}, ${stream} message(s) came down the EventSource stream, cuts at ${cutAt}`);
      });
      const elapsed = Date.now() - t0;
      await sleep(300); // late copies would arrive by now

      const { got, seen, stats } = await p.page.evaluate(() => ({ got: window.got, seen: window.seen, stats: window.recovery.stats }));
      assert.deepEqual(got.map((d) => d.seq), Array.from({ length: N }, (_, i) => i), 'each message once, in order');
      assert.equal(proxy.cuts(), CUTS, `every cut reset live connections: ${cutAt}`);
      assert.equal(seen.positioned, seen.arrived, 'every delivery carried ext.replayId and ext.epoch');
      assert.equal(stats.duplicates, seen.arrived - N, 'the extension dropped exactly the copies that arrived');
      assert.equal(stats.gaps, 0);
      assert.deepEqual(seen.lost, []);
      assert.deepEqual(seen.acks, seen.handshakes.map(() => true), 'the server agreed to acknowledgements');
      assert.equal(await p.page.evaluate(() => window.transportNow()), c.settled, `still on ${c.settled}`);
      const unexpected = p.errors.filter((e) => !cutNoise.test(e));
      assert.deepEqual(unexpected, [], 'no errors in the page but the cuts\' network failures');
      record(`${c.name}`, elapsed, [c.settled],
        `${N} messages, ${proxy.cuts()} cuts (pairs reset ${cutAt.join(',')}), ${seen.arrived} deliveries, ` +
        `${stats.duplicates} copies dropped, ${seen.handshakes.length} handshake(s)`);
    } finally {
      await p?.close();
      await proxy.close();
      await bayou.stop();
    }
  });
}
