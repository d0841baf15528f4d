// faye's browser client against `bayou --tls-cert --tls-key` in headless
// Chromium (which accepts the test's self-signed certificate through the
// context's ignoreHTTPSErrors): a WebSocket (wss:, on HTTP/1.1), and with
// WebSockets disabled, EventSource and long-polling POSTs that negotiate
// HTTP/2 (the page's Resource Timing says which protocol each request
// used).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBayouBinary, startStatic, launchBrowser, openPage, waitUntil, UNICODE, record, printSummary } from '../harness.mjs';

let browser;
let web;
let bayou;
let dir;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayou-browser-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=bayou test',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  browser = await launchBrowser();
  web = await startStatic();
  bayou = await startBayouBinary({ args: ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')] });
});
after(async () => {
  await bayou?.stop();
  await browser?.close();
  await web?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  printSummary('faye browser client over TLS');
});

const CASES = [
  { name: 'TLS, default: WebSocket (wss)', disable: [], settled: 'websocket' },
  { name: 'TLS, WebSocket disabled: EventSource + POSTs over HTTP/2', disable: ['websocket'], settled: 'eventsource' },
];

for (const c of CASES) {
  test(c.name, { timeout: 30_000 }, async () => {
    const t0 = Date.now();
    assert.match(bayou.url, /^https:\/\//);
    const p = await openPage(browser, { bayou, web, name: 'faye.html', sameOrigin: true, contextOptions: { ignoreHTTPSErrors: true } });
    try {
      const channel = `/tls/${c.settled}`;
      await p.page.evaluate((d) => window.startFaye(d), c.disable);
      await p.page.evaluate((ch) => window.subscribe(ch), channel);
      await waitUntil(() => p.page.evaluate((t) => window.transportNow() === t && window.seen.connectTypes.includes(t), c.settled),
        8000, `the client to switch to ${c.settled}`);
      const data = { text: UNICODE, over: c.settled };
      assert.deepEqual(await p.page.evaluate(([ch, d]) => window.roundTrip(ch, d), [channel, data]), data, 'data arrives intact');
      // Which protocol the page's requests to the mount used.
      const protocols = await p.page.evaluate((url) => performance.getEntriesByType('resource')
        .filter((e) => e.name.startsWith(url) && e.initiatorType === 'xmlhttprequest').map((e) => e.nextHopProtocol), bayou.url);
      assert.ok(protocols.length > 0, 'the page made XHR requests to the mount');
      assert.deepEqual([...new Set(protocols)], ['h2'], 'every XHR request to the mount went over HTTP/2');
      assert.deepEqual(p.errors, [], 'no page errors');
      record(c.name, Date.now() - t0, [c.settled], `XHR over ${[...new Set(protocols)].join(', ')}`);
    } finally {
      await p.close();
    }
  });
}
