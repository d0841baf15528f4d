// examples/chat: two browser pages chat in one room, see the members (the
// presence extension) follow joins and leaves, and the suite saves
// screenshots of both. Then two chat servers share a Redis: pages on
// different servers see each other, also after a page closes and after a
// server is killed.
//
// CHAT_URL=http://127.0.0.1:8080/ runs the same test against a chat server
// already running (started as its README says) instead of bin/chat.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startChat, launchBrowser, screenshotsDir, parseLogLine, record, printSummary } from '../harness.mjs';
import { startRedis } from '../../redis.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => {
  await browser?.close();
  printSummary('chat example');
});

async function openChat(url, nick, room) {
  const context = await browser.newContext({ viewport: { width: 900, height: 560 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`); });
  await page.goto(`${url}?nick=${encodeURIComponent(nick)}#${room}`, { timeout: 10_000 });
  await page.waitForFunction((r) => document.body.dataset.joined === r, room, { timeout: 10_000 });
  return { page, context, errors };
}

const members = (p, n, timeout = 8000) => p.page.waitForFunction((want) => document.getElementById('members').textContent === String(want), n, { timeout });
// people waits until the page's member list shows exactly these nicknames.
const people = (p, nicks, timeout = 8000) => p.page.waitForFunction(
  (want) => [...document.querySelectorAll('#people li')].map((li) => li.textContent).join(',') === want,
  [...nicks].sort().join(','), { timeout });
const lastMessage = (p) => p.page.evaluate(() => {
  const li = [...document.querySelectorAll('#messages li:not(.notice)')].pop();
  return li && { nick: li.querySelector('.nick').textContent, text: li.querySelector('.text').textContent, mine: li.classList.contains('mine') };
});
async function say(p, text) {
  await p.page.fill('#text', text);
  await p.page.click('#send');
}
const waitFor = (p, text) => p.page.waitForFunction((t) => [...document.querySelectorAll('#messages li .text')].some((e) => e.textContent === t), text, { timeout: 8000 });

test('chat example: two pages chat in a room, with the member count', { timeout: 60_000 }, async () => {
  const t0 = Date.now();
  const external = process.env.CHAT_URL;
  const chat = external ? { url: external, lines: [], stop: async () => {} } : await startChat();
  let alice;
  let bob;
  try {
    const home = await fetch(chat.url);
    assert.equal(home.status, 200);
    assert.match(await home.text(), /<script src="\/bayeux\/client.js"><\/script>/);

    const room = external ? `browser-test-${Date.now() % 100000}` : 'browser-test';
    alice = await openChat(chat.url, 'alice', room);
    await members(alice, 1);
    bob = await openChat(chat.url, 'bob', room);
    await members(bob, 2);
    await members(alice, 2);
    await people(alice, ['alice', 'bob']);
    await people(bob, ['alice', 'bob']);

    await say(alice, 'Hi Bob!');
    await waitFor(bob, 'Hi Bob!');
    assert.deepEqual(await lastMessage(bob), { nick: 'alice', text: 'Hi Bob!', mine: false });
    const reply = 'Salut Alice, ça va ? 😀';
    await say(bob, reply);
    await waitFor(alice, reply);
    assert.deepEqual(await lastMessage(alice), { nick: 'bob', text: reply, mine: false });
    await waitFor(bob, reply);
    assert.deepEqual(await lastMessage(bob), { nick: 'bob', text: reply, mine: true });
    await say(alice, 'Doing great. Markup stays text: <b>bold</b>');
    await waitFor(bob, 'Doing great. Markup stays text: <b>bold</b>');

    const dir = await screenshotsDir();
    const shots = [path.join(dir, 'chat-alice.png'), path.join(dir, 'chat-bob.png')];
    await alice.page.screenshot({ path: shots[0] });
    await bob.page.screenshot({ path: shots[1] });

    // Bob moves to another room: the count follows in both.
    await bob.page.click('button[data-room="go"]');
    await bob.page.waitForFunction(() => document.body.dataset.joined === 'go', null, { timeout: 8000 });
    await members(alice, 1);
    await members(bob, 1);
    await say(alice, 'anyone?');
    await waitFor(alice, 'anyone?');
    assert.equal(await bob.page.evaluate(() => document.querySelectorAll('#messages li .text').length), 0, 'Bob no longer gets #browser-test');

    // Bob leaves (closing the tab disconnects the client).
    await bob.page.close({ runBeforeUnload: true });
    await bob.context.close();
    const bobErrors = bob.errors;
    bob = null;

    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bobErrors, []);
    const reqs = chat.lines.map(parseLogLine).filter((r) => r.msg === 'request');
    const transports = [...new Set(reqs.map((r) => r.transport))].sort();
    if (!external) {
      assert.ok(transports.includes('websocket'), `the pages used WebSockets (server saw ${transports.join(', ')})`);
      assert.ok(reqs.some((r) => r.transport === 'client-script' && r.path === '/bayeux/client.js'));
    }
    record('chat: two pages, one room', Date.now() - t0, transports, `screenshots: ${shots.join(', ')}`);
  } finally {
    await alice?.context.close();
    await bob?.context.close();
    await chat.stop();
  }
});

test('chat example on two servers sharing a Redis: members across servers, a page closing, a server killed', { timeout: 90_000 }, async (t) => {
  if (process.env.CHAT_URL) {
    t.skip('runs its own servers');
    return;
  }
  const t0 = Date.now();
  const redis = await startRedis();
  const a = await startChat({ args: ['-redis', redis.url], name: 'chat-a' });
  const b = await startChat({ args: ['-redis', redis.url], name: 'chat-b' });
  const pages = [];
  try {
    const room = 'cluster';
    const alice = await openChat(a.url, 'alice', room);
    pages.push(alice);
    const bob = await openChat(b.url, 'bob', room);
    pages.push(bob);
    await people(alice, ['alice', 'bob']);
    await people(bob, ['alice', 'bob']);
    await say(bob, 'from server b');
    await waitFor(alice, 'from server b');

    // Bob closes his tab: Alice, on the other server, sees him leave.
    await bob.page.close({ runBeforeUnload: true });
    await bob.context.close();
    await people(alice, ['alice']);
    await members(alice, 1);

    // Carol comes on server b, which is then killed: she leaves Alice's
    // list once server b's heartbeat has expired (10 s) and a sweep ran.
    const carol = await openChat(b.url, 'carol', room);
    pages.push(carol);
    await people(alice, ['alice', 'carol']);
    const killedAt = Date.now();
    b.proc.kill('SIGKILL');
    await people(alice, ['alice'], 30_000);
    const tookMs = Date.now() - killedAt;
    await members(alice, 1);
    assert.deepEqual(alice.errors, []);
    record('chat: two servers on Redis', Date.now() - t0, ['websocket'], `a killed server's member left after ${tookMs} ms`);
  } finally {
    for (const p of pages) await p.context.close().catch(() => {});
    await a.stop();
    await b.stop();
    redis.stop();
  }
});
