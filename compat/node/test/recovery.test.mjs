// Bayou's delivery guarantees seen from the real faye 1.4.3 Node client
// with the recovery extension Bayou serves ({mount}/extensions/recovery.js,
// loaded here from the server itself): acknowledgements re-send what a cut
// connection swallowed, replay after a new handshake brings back what a
// client missed while its session expired, the extension drops the copies,
// and a plain faye client is not bothered by the positions in ext.
// Connections are cut abruptly by a TCP proxy (cutproxy.mjs: resets, no
// close frame, no FIN). Bayou-only: faye's server has no history.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as h from '../harness.mjs';
import { startCutProxy } from '../cutproxy.mjs';

const SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bayeux/recovery.js');
const T = 2; // server --timeout (seconds): a session is gone some seconds after its last connect

function skipReason() {
  if (!h.isBayou) return 'Bayou-only: history, replay and acknowledgements';
  if (!process.env.BAYOU_BIN) return false; // startServer says what is missing
  const help = spawnSync(process.env.BAYOU_BIN, ['-h'], { encoding: 'utf8', timeout: 10_000 });
  if (!`${help.stdout}${help.stderr}`.includes('--history')) return 'this bayou binary has no --history flag';
  return false;
}
const skip = skipReason();

let server;
let api; // the management API's base URL (GET /clients/{id} says whether a session lives)
let BayouRecovery;

before(async () => {
  if (skip) return;
  const apiPort = await h.freePort();
  server = await h.startServer({
    timeout: T,
    args: ['--history', '/h/**=1000:10m', '--history', '/small/**=5:10m', '--api-addr', `127.0.0.1:${apiPort}`],
  });
  api = `http://127.0.0.1:${apiPort}`;
  BayouRecovery = await loadServedExtension(server.url);
}, { timeout: 20_000 });
after(async () => { if (server) await server.stop(); });

/** Fetches {mount}/extensions/recovery.js from the server and evaluates it as CommonJS. */
async function loadServedExtension(mountURL) {
  const res = await h.withTimeout(fetch(`${mountURL}/extensions/recovery.js`), 5000, 'GET extensions/recovery.js');
  const src = await res.text();
  assert.equal(res.status, 200, `GET ${mountURL}/extensions/recovery.js: ${res.status} ${h.short(src)}`);
  assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(src, readFileSync(SOURCE, 'utf8'), 'the server serves bayeux/recovery.js (rebuild the binary?)');
  const module = { exports: {} };
  new Function('module', 'exports', src)(module, module.exports); // eslint-disable-line no-new-func
  assert.equal(typeof module.exports, 'function', 'the script exports the extension class');
  return module.exports;
}

/**
 * A faye client with the recovery extension. client.compat.incoming (the
 * harness recorder, added first) sees every message as it arrived, copies
 * included; wire holds the outgoing messages after the extension (as sent).
 */
function recoveringClient(t, url, tr, options = {}) {
  const client = h.fayeClient(url, { websocket: tr.websocket, retry: 0.5 }, t);
  const rec = new BayouRecovery(options);
  client.addExtension(rec);
  const wire = new h.Inbox('faye outgoing after the recovery extension');
  client.addExtension({ outgoing(m, cb) { wire.push(structuredClone(m)); cb(m); } });
  return { client, rec, wire };
}

/** Subscribes with faye; resolves {inbox} whose items are the data delivered to the callback. */
async function subscribeData(client, channel, ms = 5000) {
  const inbox = new h.Inbox(`data on ${channel}`);
  await h.withTimeout(client.subscribe(channel, (data) => inbox.push(data)), ms, `subscribe ${channel}`);
  return inbox;
}

/**
 * A publisher talking to the server directly (not through any proxy).
 * Resolves {pub}: a faye Client is a thenable, so it cannot be resolved bare.
 */
async function publisher(t) {
  const pub = h.fayeClient(server.url, { websocket: true }, t);
  await h.fayeConnect(pub);
  return { pub };
}

const seqs = (inbox) => inbox.items.map((d) => d.seq);
const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

/** Raw deliveries of channel (before any extension), as received. */
const raw = (client, channel) => client.compat.incoming.items.filter((m) => m.channel === channel && m.data !== undefined);

/** Whether the server still has a session (through the management API). */
async function sessionAlive(clientId) {
  const res = await fetch(`${api}/clients/${encodeURIComponent(clientId)}`);
  await res.arrayBuffer();
  return res.status === 200;
}

/**
 * A gate in front of the server, for a client that must stay away: down()
 * resets every connection and then resets each new one as soon as it is
 * accepted (faye retries and fails), up() lets connections through again.
 */
async function startGate(targetPort) {
  const open = new Set();
  let isUp = true;
  const reset = (s) => { try { s.resetAndDestroy(); } catch { s.destroy(); } };
  const srv = net.createServer({ noDelay: true }, (client) => {
    if (!isUp) { client.on('error', () => {}); reset(client); return; }
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    const pair = [client, upstream];
    open.add(pair);
    const kill = () => { open.delete(pair); pair.forEach(reset); };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', () => { if (upstream.destroyed) open.delete(pair); });
    upstream.on('close', () => { if (client.destroyed) open.delete(pair); });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const down = () => { isUp = false; for (const pair of [...open]) { open.delete(pair); pair.forEach(reset); } };
  return {
    port: srv.address().port,
    down,
    up() { isUp = true; },
    close: () => new Promise((resolve) => { down(); srv.close(() => resolve()); }),
  };
}

// The extension's own logic, message by message, without a server (the
// source file through createRequire, as an ESM application would load it).
describe('the recovery extension on its own', () => {
  const Recovery = createRequire(import.meta.url)(SOURCE);
  const pass = (rec, stage, m) => { let out; rec[stage](m, (x) => { out = x; }); return out; };
  const msg = (channel, replayId, epoch, seq) => ({ channel, data: { seq }, ext: { replayId, epoch } });

  it('acknowledgements: handshake ext.ack, connect ext.ack = last batch, {ack: false} leaves them off', () => {
    const rec = new Recovery();
    assert.deepEqual(pass(rec, 'outgoing', { channel: '/meta/handshake' }).ext, { ack: true });
    assert.equal(pass(rec, 'outgoing', { channel: '/meta/connect' }).ext, undefined, 'no ext.ack before the server agreed');
    pass(rec, 'incoming', { channel: '/meta/handshake', successful: true, ext: { ack: true } });
    assert.deepEqual(pass(rec, 'outgoing', { channel: '/meta/connect' }).ext, { ack: 0 });
    pass(rec, 'incoming', { channel: '/meta/connect', successful: true, ext: { ack: 7 } });
    assert.deepEqual(pass(rec, 'outgoing', { channel: '/meta/connect', ext: { x: 1 } }).ext, { x: 1, ack: 7 });
    pass(rec, 'outgoing', { channel: '/meta/handshake' });
    pass(rec, 'incoming', { channel: '/meta/handshake', successful: true, ext: { ack: { enabled: true, batch: 3 } } });
    assert.deepEqual(pass(rec, 'outgoing', { channel: '/meta/connect' }).ext, { ack: 3 }, 'a new session, CometD\'s object form');
    const off = new Recovery({ ack: false });
    assert.equal(pass(off, 'outgoing', { channel: '/meta/handshake' }).ext, undefined);
    pass(off, 'incoming', { channel: '/meta/handshake', successful: true, ext: { ack: true } });
    assert.equal(pass(off, 'outgoing', { channel: '/meta/connect' }).ext, undefined);
  });

  it('drops copies and old messages of an epoch, starts afresh on a new epoch, counts gaps', () => {
    const rec = new Recovery();
    const seqs = [msg('/a', 1, 'e', 1), msg('/a', 2, 'e', 2), msg('/a', 2, 'e', 2), msg('/a', 1, 'e', 1),
      msg('/b', 1, 'e', 'b1'), msg('/a', 3, 'e', 3), msg('/a', 5, 'e', 5), msg('/a', 1, 'f', 'f1'),
      { channel: '/a', data: 'no position' }]
      .map((m) => pass(rec, 'incoming', m)).filter(Boolean).map((m) => m.data.seq ?? m.data);
    assert.deepEqual(seqs, [1, 2, 'b1', 3, 5, 'f1', 'no position']);
    assert.deepEqual(rec.stats, { duplicates: 2, gaps: 1, lost: 0 });
    assert.deepEqual(rec.positions(), { '/a': { replayId: 1, epoch: 'f' }, '/b': { replayId: 1, epoch: 'e' } });
    const reply = { channel: '/a', successful: true, id: '9' };
    assert.equal(pass(rec, 'incoming', reply), reply, 'replies pass');
  });

  it('asks to replay on (re)subscribe of a known channel, not for wildcards; unsubscribe forgets', () => {
    const rec = new Recovery({ positions: { '/c': { replayId: 4, epoch: 'e' } } });
    assert.deepEqual(pass(rec, 'outgoing', { channel: '/meta/subscribe', subscription: '/c' }).ext,
      { replay: { '/c': { replayId: 4, epoch: 'e' } }, replayLost: 'report' });
    assert.deepEqual(pass(rec, 'outgoing', { channel: '/meta/subscribe', subscription: '/d' }).ext, { replay: { '/d': -1 } },
      'a first subscribe asks -1: only new messages, and the reply says where the channel stands');
    assert.equal(pass(rec, 'outgoing', { channel: '/meta/subscribe', subscription: '/c/*' }).ext, undefined);
    const own = { channel: '/meta/subscribe', subscription: '/c', ext: { replay: { '/c': -2 } } };
    assert.deepEqual(pass(rec, 'outgoing', own).ext, { replay: { '/c': -2 } }, 'the application\'s own replay wins');
    pass(rec, 'outgoing', { channel: '/meta/unsubscribe', subscription: '/c' });
    assert.equal(rec.position('/c'), undefined);
  });

  it('reads subscribe replies: position when nothing is replayed, onLost and recovery:lost when not recovered', () => {
    const lost = [];
    const events = [];
    const rec = new Recovery({ onLost: (ch, where) => lost.push([ch, where]) });
    rec.added({ trigger: (...a) => events.push(a) });
    const reply = (ch, replayId, epoch, recovered) =>
      pass(rec, 'incoming', { channel: '/meta/subscribe', successful: true, subscription: ch, ext: { replay: { [ch]: { replayId, epoch, recovered } } } });
    pass(rec, 'outgoing', { channel: '/meta/subscribe', subscription: '/n' });
    reply('/n', 10, 'e', true);
    assert.deepEqual(rec.position('/n'), { replayId: 10, epoch: 'e' }, 'live after 10');
    pass(rec, 'incoming', msg('/n', 11, 'e', 11));
    pass(rec, 'outgoing', { channel: '/meta/subscribe', subscription: '/n' });
    reply('/n', 15, 'e', true);
    assert.deepEqual(rec.position('/n'), { replayId: 11, epoch: 'e' }, 'replayed 12..15 follow: kept at 11');
    assert.ok(pass(rec, 'incoming', msg('/n', 12, 'e', 12)), 'a replayed message passes');
    pass(rec, 'outgoing', { channel: '/meta/subscribe', subscription: '/n' });
    reply('/n', 40, 'g', false);
    assert.deepEqual(rec.position('/n'), { replayId: 40, epoch: 'g' });
    assert.deepEqual(lost, [['/n', { replayId: 40, epoch: 'g' }]]);
    assert.deepEqual(events, [['recovery:lost', '/n', { replayId: 40, epoch: 'g' }]]);
    pass(rec, 'outgoing', { channel: '/meta/subscribe', subscription: '/m', ext: { replay: { '/m': -2 } } });
    reply('/m', 9, 'e', true);
    assert.deepEqual(rec.position('/m'), { replayId: 0, epoch: 'e' }, '-2: everything retained follows');
    assert.equal(rec.stats.lost, 1);
  });
});

/**
 * A subscriber with the extension behind a cut proxy, and a direct
 * publisher sending n numbered messages (paced) on a history channel; every
 * 100 messages (at 50, 150, ...) and up to `cuts` times, once the
 * subscriber is connected and nearly caught up, a message is published and
 * the proxy resets the subscriber's connections right after the server
 * acknowledged it (its copy is then in flight). Resolves when all are
 * published.
 */
async function publishWhileCutting(t, tr, { n, cuts, ack }) {
  const proxy = await startCutProxy(server.port);
  t.after(() => proxy.close());
  const ch = `/h/${h.uniqueName('cut')}/feed`;
  const { client, rec, wire } = recoveringClient(t, `http://127.0.0.1:${proxy.port}/bayeux`, tr, { ack });
  const inbox = await subscribeData(client, ch);
  await h.waitFayeTransport(client, tr.name);
  const { pub } = await publisher(t);
  const t0 = Date.now();
  const cutAt = [];
  for (let i = 0; i < n; i++) {
    const cutNow = i % 100 === 50 && cutAt.length < cuts;
    if (cutNow) {
      await h.waitUntil(() => proxy.connections() > 0 && inbox.items.length >= i - 25, 20_000,
        () => `the subscriber to be connected and catching up before cut ${cutAt.length + 1} ` +
          `(connections ${proxy.connections()}, received ${inbox.items.length}/${i})`);
    }
    await h.fayePublish(pub, ch, { seq: i });
    if (cutNow) cutAt.push({ i, pairs: proxy.cut() });
    else await h.sleep(4); // pace the publisher: the cuts fall among the messages
  }
  return { client, rec, wire, inbox, proxy, ch, cutAt, t0 };
}

describe('faye with the recovery extension, against bayou with history', { skip, timeout: 180_000 }, () => {
  it('the served script is the source file, and exports the extension class', () => {
    assert.equal(typeof BayouRecovery.prototype.incoming, 'function');
    assert.equal(typeof BayouRecovery.prototype.outgoing, 'function');
  });

  for (const tr of h.TRANSPORTS) {
    it(`over ${tr.name}: 1,000 messages, 10 cuts of the subscriber's connections: each message once, in order`,
      { timeout: 90_000 }, async (t) => {
        const N = 1000;
        const run = await publishWhileCutting(t, tr, { n: N, cuts: 10 });
        const { client, rec, wire, inbox, proxy, ch } = run;
        await inbox.waitCount(() => true, N, 30_000, `all ${N} messages after 10 cuts`);
        const elapsed = Date.now() - run.t0;
        await h.sleep(300); // late copies would arrive by now

        assert.deepEqual(seqs(inbox), range(0, N), 'the application saw each message once, in order');
        assert.equal(proxy.cuts(), 10, `every cut reset live connections: ${h.short(run.cutAt)}`);
        const got = raw(client, ch);
        const copies = got.length - N;
        assert.equal(rec.stats.duplicates, copies, 'the extension dropped exactly the copies that arrived');
        assert.equal(rec.stats.gaps, 0, 'no gap in the replayIds');
        assert.ok(got.every((m) => Number.isInteger(m.ext?.replayId) && typeof m.ext?.epoch === 'string'),
          `every delivery carries ext.replayId and ext.epoch: ${h.short(got.find((m) => !m.ext?.replayId))}`);
        assert.deepEqual(rec.position(ch), { replayId: got.at(-1).ext.replayId, epoch: got.at(-1).ext.epoch });

        // The acknowledgement protocol was on: handshake ext.ack true both
        // ways, each connect carried the last batch number received.
        const hs = client.compat.incoming.items.filter((m) => m.channel === '/meta/handshake' && m.successful);
        assert.ok(hs.length >= 1 && hs.every((m) => m.ext?.ack === true), `handshake replies: ${h.short(hs.map((m) => m.ext))}`);
        assert.ok(wire.items.filter((m) => m.channel === '/meta/handshake').every((m) => m.ext?.ack === true));
        const acks = wire.items.filter((m) => m.channel === '/meta/connect').map((m) => m.ext?.ack);
        assert.ok(acks.length > 2 && acks.every(Number.isInteger), `connects carry ext.ack numbers: ${h.short(acks)}`);
        const batches = client.compat.incoming.items.filter((m) => m.channel === '/meta/connect' && m.successful)
          .map((m) => m.ext?.ack);
        assert.ok(batches.every(Number.isInteger), `connect replies carry ext.ack numbers: ${h.short(batches)}`);
        assert.equal(h.fayeTransport(client).type, tr.name, `still on ${tr.name}`);
        t.diagnostic(`${tr.name}: ${N} messages, ${proxy.cuts()} cuts (pairs reset: ${run.cutAt.map((c) => c.pairs).join(',')}), ` +
          `${got.length} deliveries, ${copies} copies dropped by the extension, ${hs.length} handshake(s), ` +
          `${acks.length} connects, last batch ${batches.at(-1)}, ${elapsed} ms`);
      });

    it(`over ${tr.name}: control: the same cuts without acknowledgements ({ack: false}) (losses reported, not asserted)`,
      { timeout: 60_000 }, async (t) => {
        const N = 500;
        const { rec, wire, inbox, ch } = await publishWhileCutting(t, tr, { n: N, cuts: 5, ack: false });
        // Wait for the last message (or give up on it: it may be the lost one).
        await h.settle(inbox.waitFor((d) => d.seq >= N - 5, 5000, 'the last messages'), 6000, 'the last messages');
        await h.sleep(300);
        const got = seqs(inbox);
        assert.ok(got.every((v, i) => i === 0 || v > got[i - 1]), 'never a copy, never out of order');
        assert.ok(!wire.items.some((m) => m.ext?.ack !== undefined), 'no ext.ack sent');
        assert.equal(rec.stats.duplicates, 0);
        t.diagnostic(`${tr.name} without acks: ${N - got.length} of ${N} messages lost in 5 cuts ` +
          `(the extension saw ${rec.stats.gaps} gap(s) in the replayIds on ${ch})`);
      });

    it(`over ${tr.name}: away past its session (> 2 x --timeout), it re-handshakes and gets exactly what it missed`,
      { timeout: 60_000 }, async (t) => {
        const gate = await startGate(server.port);
        t.after(() => gate.close());
        const ch = `/h/${h.uniqueName('away')}/feed`;
        const lost = [];
        const { client, rec, wire } = recoveringClient(t, `http://127.0.0.1:${gate.port}/bayeux`, tr,
          { onLost: (c) => lost.push(c) });
        const inbox = await subscribeData(client, ch);
        const quiet = `${ch}/quiet`; // no message before the absence: resumed from the subscribe reply's position
        const quietInbox = await subscribeData(client, quiet);
        await h.waitFayeTransport(client, tr.name);
        const firstId = client._dispatcher.clientId;
        const { pub } = await publisher(t);

        for (let i = 0; i < 10; i++) await h.fayePublish(pub, ch, { seq: i });
        await inbox.waitCount(() => true, 10, 5000, 'the first 10 messages');
        const before = rec.position(ch);
        assert.equal(before.replayId, raw(client, ch).at(-1).ext.replayId);

        const t0 = Date.now();
        gate.down();
        for (let i = 10; i < 30; i++) {
          await h.fayePublish(pub, ch, { seq: i });
          await h.sleep(20);
        }
        await h.waitUntil(async () => !(await sessionAlive(firstId)), 6 * T * 1000 + 5000,
          `the server to end the session ${firstId} of the absent client`, 100);
        const awayFor = Date.now() - t0;
        assert.ok(awayFor > 2 * T * 1000 - 500, `away ${awayFor} ms`);
        for (let i = 30; i < 35; i++) await h.fayePublish(pub, ch, { seq: i }); // after the session ended
        for (let i = 0; i < 5; i++) await h.fayePublish(pub, quiet, { seq: i });
        gate.up();

        await inbox.waitCount(() => true, 35, 15_000, 'the 25 messages missed while away');
        await quietInbox.waitCount(() => true, 5, 5000, `the 5 messages on ${quiet}, published while away`);
        for (let i = 35; i < 45; i++) await h.fayePublish(pub, ch, { seq: i });
        await inbox.waitCount(() => true, 45, 5000, 'live messages after the return');
        await h.sleep(300);

        assert.deepEqual(seqs(inbox), range(0, 45), 'each message once, in order, across the new session');
        assert.deepEqual(seqs(quietInbox), range(0, 5), `${quiet}: what was published while away, once, in order`);
        assert.notEqual(client._dispatcher.clientId, firstId, 'a new session (faye handshook again)');
        const resub = wire.items.filter((m) => m.channel === '/meta/subscribe' && m.subscription === ch && m.clientId !== firstId);
        assert.ok(resub.length >= 1, 'faye subscribed again in the new session');
        assert.deepEqual(resub[0].ext?.replay, { [ch]: before }, 'the re-subscribe asks to replay after the last position');
        assert.equal(resub[0].ext?.replayLost, 'report');
        const reply = client.compat.incoming.items.find((m) => m.channel === '/meta/subscribe' && m.id === resub[0].id);
        assert.ok(reply?.successful && reply.ext?.replay?.[ch], `the re-subscribe's reply carries ext.replay: ${h.short(reply)}`);
        assert.equal(reply.ext.replay[ch].recovered, true, `recovered: ${h.short(reply.ext)}`);
        assert.equal(reply.ext.replay[ch].epoch, before.epoch);
        assert.deepEqual(lost, [], 'onLost not called');
        assert.equal(rec.stats.lost, 0);
        assert.equal(rec.stats.gaps, 0);
        t.diagnostic(`${tr.name}: away ${awayFor} ms, 25 missed messages replayed, ` +
          `${raw(client, ch).length - 45} copies dropped (${rec.stats.duplicates} by the extension), ` +
          `subscribe reply ${JSON.stringify(reply.ext.replay[ch])}, ${Date.now() - t0} ms in all`);
      });

    it(`over ${tr.name}: a position no longer retained is reported: onLost and "recovery:lost", then live messages`,
      { timeout: 60_000 }, async (t) => {
        const gate = await startGate(server.port);
        t.after(() => gate.close());
        const ch = `/small/${h.uniqueName('lost')}`; // 5 publications retained
        const lost = [];
        const events = [];
        const { client, rec } = recoveringClient(t, `http://127.0.0.1:${gate.port}/bayeux`, tr,
          { onLost: (c, where) => lost.push({ c, where }) });
        client.bind('recovery:lost', (c) => events.push(c));
        const inbox = await subscribeData(client, ch);
        await h.waitFayeTransport(client, tr.name);
        const firstId = client._dispatcher.clientId;
        const { pub } = await publisher(t);
        for (let i = 0; i < 3; i++) await h.fayePublish(pub, ch, { seq: i });
        await inbox.waitCount(() => true, 3, 5000, 'the first 3 messages');

        gate.down();
        for (let i = 3; i < 23; i++) await h.fayePublish(pub, ch, { seq: i });
        await h.waitUntil(async () => !(await sessionAlive(firstId)), 6 * T * 1000 + 5000,
          `the server to end the session ${firstId}`, 100);
        gate.up();
        await h.waitUntil(() => lost.length > 0, 15_000, 'onLost after the re-subscribe');
        for (let i = 23; i < 28; i++) await h.fayePublish(pub, ch, { seq: i });
        await inbox.waitCount(() => true, 8, 5000, 'live messages after the loss');
        await h.sleep(300);

        assert.deepEqual(lost.map((l) => l.c), [ch]);
        assert.equal(typeof lost[0].where.epoch, 'string');
        assert.deepEqual(events, [ch], 'the client triggered recovery:lost');
        assert.equal(rec.stats.lost, 1);
        assert.deepEqual(seqs(inbox), [0, 1, 2, 23, 24, 25, 26, 27], 'nothing replayed, then live messages once each');
        t.diagnostic(`${tr.name}: reported lost at ${JSON.stringify(lost[0].where)}`);
      });

    it(`over ${tr.name}: a plain faye client (no extension) gets history-channel messages unchanged`,
      { timeout: 30_000 }, async (t) => {
        const ch = `/h/${h.uniqueName('plain')}`;
        const client = h.fayeClient(server.url, { websocket: tr.websocket }, t);
        const inbox = await subscribeData(client, ch);
        await h.waitFayeTransport(client, tr.name);
        const { pub } = await publisher(t);
        for (let i = 0; i < 20; i++) await h.fayePublish(pub, ch, { seq: i });
        await inbox.waitCount(() => true, 20, 5000, 'the 20 messages');
        await h.sleep(300);

        assert.deepEqual(seqs(inbox), range(0, 20), 'each message once, in order');
        const got = raw(client, ch);
        assert.equal(got.length, 20, 'one delivery per publish');
        const ids = got.map((m) => m.ext?.replayId);
        assert.deepEqual(ids, range(ids[0], ids[0] + 20), `ext.replayId grows by one per publication: ${h.short(ids)}`);
        assert.ok(got.every((m) => typeof m.ext.epoch === 'string' && m.ext.epoch === got[0].ext.epoch));
        const hs = client.compat.incoming.find((m) => m.channel === '/meta/handshake' && m.successful);
        assert.ok(hs.ext?.ack === undefined, `no ack offered to a client that did not ask: ${h.short(hs.ext)}`);
        assert.equal(h.fayeTransport(client).type, tr.name);
      });
  }
});
