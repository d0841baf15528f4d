// The live status page of the HTTP API (GET /status) in headless Chromium:
// `bayou --api-addr --api-key` runs a load (faye Node clients over
// WebSocket and long-polling, a publisher on the API at a steady rate),
// the page is opened as /status#key=..., and the figures it shows must
// match what the API answers (/status.json, /clients, /channels) within
// the update interval; the chart must be drawn. A screenshot is written to
// screenshots/status.png. Then the page is fed hostile channel names (its
// status.json answered by the test) and must show them as text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import faye from 'faye';
import { startBayouBinary, launchBrowser, screenshotsDir, waitUntil, withTimeout, record, printSummary } from '../harness.mjs';

const KEY = 'status-test-key-8d1f';
const RATE = 20; // publishes per second during the load
const UPDATE = 1000; // the page's update interval, ms
// How long a figure of the page may lag behind the API: two reads.
const LAG = 2 * UPDATE + 500;

let browser;
let bayou;
let api;
before(async () => {
  browser = await launchBrowser();
  bayou = await startBayouBinary({ args: ['--api-addr', '127.0.0.1:0', '--api-key', KEY] });
  api = await waitUntil(() => bayou.stdout().match(/serving the HTTP API at (http:\/\/\S+?)\/?\s/)?.[1], 5000, 'the API URL');
});
after(async () => {
  await bayou?.stop();
  await browser?.close();
  printSummary('status page');
});

async function apiGet(p) {
  const res = await fetch(api + p, { headers: { 'X-API-Key': KEY } });
  assert.equal(res.status, 200, `GET ${p}`);
  return res.json();
}

// startClients connects n faye clients (over WebSocket, or long-polling
// when disabled) subscribed to channels, and waits for their
// subscriptions. It returns the clients and the number of messages each
// got.
async function startClients(n, channels, { websocket }) {
  const clients = [];
  for (let i = 0; i < n; i++) {
    const c = new faye.Client(`${bayou.url}`, { timeout: 3 });
    if (!websocket) c.disable('websocket');
    c.got = 0;
    clients.push(c);
    await withTimeout(Promise.all(channels.map((ch) => c.subscribe(ch, () => { c.got++; }))), 8000, `client ${i} to subscribe`);
  }
  return clients;
}

// pageFigures reads the figures the page shows.
const pageFigures = (page) => page.evaluate(() => {
  const num = (name) => {
    const t = document.querySelector(`[data-field="${name}"]`).textContent;
    return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
  };
  const names = ['sessions', 'subscriptions', 'channels', 'published', 'deliveredTotal', 'slowConsumerDrops', 'rateIn', 'rateOut',
    'connections.websocket', 'connections.longPolling', 'delivered.websocket', 'delivered.longPolling', 'clusterSessions', 'liveNodes'];
  const out = Object.fromEntries(names.map((n) => [n, num(n)]));
  out.top = [...document.querySelectorAll('#topChannels tr')].map((tr) => [...tr.cells].map((td) => td.textContent));
  out.errors = [...document.querySelectorAll('#errors tr')].map((tr) => [...tr.cells].map((td) => td.textContent));
  out.updates = Number(document.body.dataset.updates || 0);
  out.state = document.body.dataset.state;
  out.samples = Number(document.getElementById('chart').dataset.samples || 0);
  return out;
});

// matches waits until the page shows what want() says the API answers
// (asked again at each try), for at most LAG after the first try.
async function matches(page, what, want, got) {
  let last;
  try {
    await waitUntil(async () => {
      const [w, g] = [await want(), got(await pageFigures(page))];
      last = { api: w, page: g };
      return JSON.stringify(w) === JSON.stringify(g);
    }, LAG, what, 100);
  } catch (e) {
    assert.fail(`${e.message}: ${JSON.stringify(last)}`);
  }
}

// inkOf counts the chart's pixels of the in (blue) and out (orange) lines.
const inkOf = (page) => page.evaluate(() => {
  const c = document.getElementById('chart');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let blue = 0;
  let orange = 0;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
    if (a < 200) continue;
    if (b > 180 && r < 90 && g < 140) blue++;
    if (r > 200 && g > 60 && g < 120 && b < 60) orange++;
  }
  return { blue, orange };
});

test('status page: the figures match the API under load, the chart is drawn', { timeout: 90_000 }, async () => {
  const t0 = Date.now();
  // Without a key the data is refused, and the page says why.
  const ctx0 = await browser.newContext();
  const nokey = await ctx0.newPage();
  await nokey.goto(`${api}/status`, { timeout: 10_000 });
  await nokey.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: 5000 });
  assert.match(await nokey.textContent('#problem'), /401 .*status#key=/);
  await ctx0.close();

  const ws = await startClients(4, ['/load/all', '/load/ws'], { websocket: true });
  const lp = await startClients(2, ['/load/all'], { websocket: false });
  const extra = await startClients(1, ['/load/*'], { websocket: true });
  const clients = [...ws, ...lp, ...extra];

  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('console', (m) => problems.push(`console ${m.type()}: ${m.text()}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  const sentKeys = [];
  page.on('request', (r) => { if (r.url().endsWith('/status.json')) sentKeys.push(r.headers()['x-api-key']); });

  let publishing = true;
  let published = 0;
  let deliveries = 0; // what the publishes should reach: 7 clients on /load/all, 5 on /load/ws
  const publisher = (async () => {
    const start = Date.now();
    // At RATE per second, for at most 60 s (the test stops it sooner).
    for (let i = 0; publishing && i < RATE * 60; i++) {
      const res = await fetch(`${api}/publish`, {
        method: 'POST', headers: { 'X-API-Key': KEY }, body: JSON.stringify({ channel: i % 4 ? '/load/all' : '/load/ws', data: { i } }),
      });
      assert.equal(res.status, 200);
      published++;
      deliveries += i % 4 ? 7 : 5;
      const next = start + ((i + 1) * 1000) / RATE;
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
  })();

  try {
    await page.goto(`${api}/status#key=${KEY}`, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => location.hash), '', 'the key leaves the address bar');
    // Five updates with the load running: rates and chart have data.
    await page.waitForFunction(() => Number(document.body.dataset.updates) >= 5, null, { timeout: 10_000 });

    // Gauges that hold still during the load: exactly the API's.
    await matches(page, 'sessions', async () => [(await apiGet('/clients')).count, (await apiGet('/status.json')).sessions],
      (f) => [f.sessions, f.sessions]);
    await matches(page, 'subscriptions, channels, WebSockets', async () => {
      const s = await apiGet('/status.json');
      return [s.subscriptions, s.channels, s.connections.websocket, s.clusterSessions];
    }, (f) => [f.subscriptions, f.channels, f['connections.websocket'], f.clusterSessions]);
    const want = { sessions: 7, subscriptions: 4 * 2 + 2 + 1, websockets: 5 };
    const f0 = await pageFigures(page);
    assert.deepEqual([f0.sessions, f0.subscriptions, f0['connections.websocket'], f0.liveNodes],
      [want.sessions, want.subscriptions, want.websockets, 1]);
    // Top channels: /channels sorted by subscribers, most first.
    await matches(page, 'top channels', async () => (await apiGet('/channels')).channels
      .sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1)).slice(0, 10)
      .map((c) => [c.channel, String(c.subscribers)]), (f) => f.top);
    assert.deepEqual(f0.top, [['/load/all', '6'], ['/load/ws', '4'], ['/load/*', '1']]);

    // Counters: the page is never ahead of the API, and catches up.
    const before = await apiGet('/status.json');
    await matches(page, 'counters catch up', async () => true,
      (f) => f.published >= before.published && f.deliveredTotal >= before.deliveredTotal);
    // Rates: about RATE in, and 6 or 5 recipients out (a /load/ws publish
    // reaches 4 + 1).
    const f1 = await pageFigures(page);
    assert.ok(f1.rateIn >= RATE * 0.5 && f1.rateIn <= RATE * 1.5, `rate in ${f1.rateIn}/s, publishing ${RATE}/s`);
    assert.ok(f1.rateOut >= RATE * 5 * 0.5 && f1.rateOut <= RATE * 7 * 1.5, `rate out ${f1.rateOut}/s`);
    // The chart: both lines drawn over the samples so far.
    assert.ok(f1.samples >= 4, `${f1.samples} samples in the chart`);
    const ink = await inkOf(page);
    assert.ok(ink.blue > 20 && ink.orange > 20, `chart ink ${JSON.stringify(ink)}`);

    // Ten seconds of load in the chart for the screenshot.
    await page.waitForFunction(() => Number(document.getElementById('chart').dataset.samples) >= 10, null, { timeout: 15_000 });
    const dir = await screenshotsDir();
    const shot = path.join(dir, 'status.png');
    await page.screenshot({ path: shot, fullPage: true });

    // Stop the load: every counter of the page then equals the API's.
    publishing = false;
    await publisher;
    await waitUntil(() => clients.reduce((n, c) => n + c.got, 0) >= deliveries, 8000, 'the clients to get every message');
    // The API's answers are snapshots up to half a second old: wait for
    // one taken after the load, then for the page to show it.
    await waitUntil(async () => {
      const s = await apiGet('/status.json');
      return s.published === published && s.deliveredTotal === deliveries;
    }, 5000, 'the API to count every publish and delivery', 100);
    await matches(page, 'final counters', async () => {
      const s = await apiGet('/status.json');
      return [s.published, s.deliveredTotal, s.delivered.websocket, s.delivered.longPolling, s.slowConsumerDrops];
    }, (f) => [f.published, f.deliveredTotal, f['delivered.websocket'], f['delivered.longPolling'], f.slowConsumerDrops]);
    const end = await pageFigures(page);
    assert.equal(end.published, published, 'every publish counted');
    const got = clients.reduce((n, c) => n + c.got, 0);
    assert.equal(got, deliveries, 'each client got each message once');
    assert.equal(end.deliveredTotal, got, 'deliveries = messages the clients got');
    assert.equal(end['delivered.longPolling'], lp.reduce((n, c) => n + c.got, 0));
    // After the load the rates fall to 0.
    await matches(page, 'rates back to 0', async () => [0, 0], (f) => [f.rateIn, f.rateOut]);

    assert.ok(sentKeys.length >= 5 && sentKeys.every((k) => k === KEY), 'every status.json request carried the key');
    // The browser's own /favicon.ico probe gets the API's 404.
    const real = problems.filter((p) => !/favicon\.ico|Failed to load resource/.test(p));
    assert.deepEqual(real, [], 'no page errors or console output');
    record('status page under load', Date.now() - t0, ['websocket', 'long-polling'],
      `${published} publishes at ${RATE}/s, ${got} deliveries, screenshot ${shot}`);
  } finally {
    publishing = false;
    await publisher.catch(() => {});
    await context.close();
    await Promise.all(clients.map((c) => c.disconnect()));
  }
});

test('status page: hostile channel names are shown as text', { timeout: 30_000 }, async () => {
  const t0 = Date.now();
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  const hostile = ['/a/<script>alert(1)</script>', '/b/"><img src=x onerror="window.pwned=1">', '/c/&amp;<b>x</b>'];
  // The page's data is answered by the test, as a server (or a proxy)
  // relaying client-made names would give it.
  await page.route('**/status.json', async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    body.topChannels = hostile.map((channel, i) => ({ channel, subscribers: 3 - i }));
    body.version = '<i>v</i>';
    body.errors = [{ code: '<u>500</u>', count: 1 }];
    await route.fulfill({ response: res, body: JSON.stringify(body) });
  });
  try {
    await page.goto(`${api}/status#key=${KEY}`, { timeout: 10_000 });
    await page.waitForFunction(() => Number(document.body.dataset.updates) >= 2, null, { timeout: 10_000 });
    const seen = await page.evaluate(() => ({
      top: [...document.querySelectorAll('#topChannels tr td:first-child')].map((td) => td.textContent),
      version: document.querySelector('[data-field="version"]').textContent,
      error: document.querySelector('#errors td').textContent,
      injected: document.querySelectorAll('main img, main b, main i, main u, main script, header i').length,
      pwned: window.pwned === 1,
    }));
    assert.deepEqual(seen, { top: hostile, version: '<i>v</i>', error: '<u>500</u>', injected: 0, pwned: false });
    assert.deepEqual(problems, []);
    record('status page, hostile names', Date.now() - t0, [], 'shown as text');
  } finally {
    await context.close();
  }
});
