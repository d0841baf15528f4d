// Delivery guarantees with unchanged third-party clients (Bayou-only):
//
// a. CometD 9's AckExtension: a subscriber behind a proxy that resets its
//    connections 10 times while 5,000 messages are published must get every
//    one (at least once), over long-polling and over WebSocket. A plain CometD
//    subscriber behind the same proxy is measured beside it (its losses are
//    reported, not asserted: plain Bayeux cannot detect them).
// b. jsforce's faye extension StreamingExtension.Replay (the Salesforce replay
//    protocol: ext.replay {channel: -2 | -1 | replayId} on /meta/subscribe)
//    against channels with history.
//
// The server protocol checked in a: a handshake with ext.ack true is answered
// with ext.ack true; every /meta/connect reply carries ext.ack = its batch
// number; messages for an ack session travel only with connect replies (in the
// same HTTP response, or the same WebSocket frame before the reply), and are
// sent again with the next connect while its ext.ack is below their batch.
// Bayou carries a message's position in ext.replayId (Salesforce puts it in
// data.event.replayId, which a generic server does not touch).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { AckExtension } from 'cometd';
import * as h from '../harness.mjs';
import { startCutProxy } from '../cutproxy.mjs';

// jsforce's main entry loads its whole API (and newer releases need a newer
// Node than 20); the faye extensions are a small CommonJS file of their own.
const require = createRequire(import.meta.url);
const { Replay } = require('jsforce/lib/api/streaming/extension');

const skip = h.bayouOnly('acknowledgements and replay are Bayou extensions of Bayeux');
const T = 3; // server --timeout (seconds)

// ---------------------------------------------------------------------------
// Frames as received by CometD clients: each WebSocket frame and each
// long-polling response, with the clientIds of the connection or request that
// carried it, so that a frame can be attributed to one client.

const frames = [];
let recorderInstalled = false;

function idsIn(text, into) {
  if (typeof text !== 'string' || !text.includes('clientId')) return;
  try {
    for (const m of [].concat(JSON.parse(text))) {
      if (m && typeof m.clientId === 'string') into.add(m.clientId);
    }
  } catch { /* not JSON */ }
}

function recordFrame(via, ids, text) {
  let messages;
  try { messages = [].concat(JSON.parse(text)); } catch { return; }
  frames.push({ via, ids, messages });
}

/** Wraps the WebSocket and XMLHttpRequest classes the harness installed (once). */
function installFrameRecorder() {
  if (recorderInstalled) return;
  recorderInstalled = true;
  const BaseWebSocket = global.window.WebSocket;
  global.window.WebSocket = class FrameWebSocket extends BaseWebSocket {
    constructor(...args) {
      super(...args);
      // compatClientIds fills as the client sends on this socket.
      this.on('message', (data) => recordFrame('websocket', this.compatClientIds, String(data)));
    }
  };
  const BaseXHR = global.window.XMLHttpRequest;
  global.window.XMLHttpRequest = class FrameXHR extends BaseXHR {
    send(data) {
      const ids = new Set();
      idsIn(data, ids);
      const onload = this.onload;
      this.onload = (...a) => {
        recordFrame('long-polling', ids, this.responseText);
        return onload && onload.apply(this, a);
      };
      return super.send(data);
    }
  };
}

/** A CometD client (through the harness), with the frame recorder installed. */
function cometdClient(url, opts, t) {
  const cometd = h.cometdClient(url, opts, t); // installs the harness's window classes first
  installFrameRecorder();
  return cometd;
}

// ---------------------------------------------------------------------------
// a. acknowledgements through a proxy that cuts connections

const TOTAL = 5000;
const CUTS = 10;
const BATCH = 50; // publishes per CometD batch (one frame), below --max-batch 100
const PACE_MS = 2; // pause between batches, to pace the publisher

/** Publishes {n} for n in [from, to) in batches; resolves once all are acked. */
async function publishRange(pub, channel, from, to) {
  for (let i = from; i < to; i += BATCH) {
    const acks = [];
    pub.batch(() => {
      for (let n = i; n < Math.min(i + BATCH, to); n++) {
        acks.push(new Promise((resolve) => pub.publish(channel, { n }, resolve)));
      }
    });
    const replies = await h.withTimeout(Promise.all(acks), 10_000, `publish acks for ${i}..${i + BATCH - 1}`);
    const failed = replies.filter((r) => !r.successful);
    assert.deepEqual(failed, [], 'every publish must be acked successful');
    await h.sleep(PACE_MS);
  }
}

/** A subscriber through the proxy, recording every n it receives. */
async function proxiedSubscriber(t, tr, url, channel, { ack }) {
  const cometd = cometdClient(url, { websocket: tr.websocket }, t);
  if (ack) cometd.registerExtension('ack', new AckExtension());
  const reply = await h.cometdHandshake(cometd);
  assert.equal(reply.successful, true, `handshake must succeed: ${h.short(reply)}`);
  const received = [];
  const d = h.deferred();
  cometd.subscribe(channel, (m) => received.push(m.data.n), (r) => d.resolve(r));
  const sub = await h.withTimeout(d.promise, 5000, `subscribe reply for ${channel}`);
  assert.equal(sub.successful, true, `subscribe must succeed: ${h.short(sub)}`);
  return { cometd, received, handshake: reply };
}

/** Successful /meta/connect replies this client got after time `since`. */
function connectsSince(sub, since) {
  return sub.cometd.compat.incoming.items.filter((m) =>
    m.channel === '/meta/connect' && m.successful && m.compatAt >= since).length;
}

/** Lost and duplicated n among 0..TOTAL-1, and order inversions. */
function tally(received) {
  const seen = new Map();
  let inversions = 0;
  for (let i = 0; i < received.length; i++) {
    seen.set(received[i], (seen.get(received[i]) || 0) + 1);
    if (i > 0 && received[i] < received[i - 1]) inversions++;
  }
  let lost = 0;
  const lostRanges = []; // "a-b" runs of lost n
  for (let n = 0; n < TOTAL; n++) {
    if (seen.has(n)) continue;
    lost++;
    const last = lostRanges.at(-1);
    if (last && last[1] === n - 1) last[1] = n;
    else lostRanges.push([n, n]);
  }
  return {
    received: received.length, unique: seen.size, lost, duplicates: received.length - seen.size, inversions,
    lostRanges: lostRanges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(','),
  };
}

/**
 * Protocol problems in what an ack client received: its handshake reply, its
 * connect replies' ext.ack, and frames carrying deliveries without a connect
 * reply after them.
 */
function ackProtocolProblems(sub, channel) {
  const problems = [];
  const ext = sub.handshake.ext || {};
  const enabled = ext.ack === true || (ext.ack && typeof ext.ack === 'object' && ext.ack.enabled === true);
  if (!enabled) problems.push(`handshake reply ext.ack is ${h.short(ext.ack)}, want true`);
  const connects = sub.cometd.compat.incoming.items.filter((m) => m.channel === '/meta/connect' && m.successful);
  const batches = connects.map((m) => m.ext && m.ext.ack);
  const notNumbers = batches.filter((b) => typeof b !== 'number');
  if (notNumbers.length > 0) {
    problems.push(`${notNumbers.length} of ${connects.length} successful connect replies lack a numeric ext.ack (e.g. ${h.short(notNumbers[0])})`);
  }
  const numbers = batches.filter((b) => typeof b === 'number');
  const decreasing = numbers.filter((b, i) => i > 0 && b < numbers[i - 1]).length;
  if (decreasing > 0) problems.push(`ext.ack went down ${decreasing} time(s): ${h.short(numbers.slice(0, 30))}`);
  const ids = h.cometdClientIds(sub.cometd);
  const mine = frames.filter((f) => [...f.ids].some((id) => ids.has(id)));
  let loose = 0;
  let example;
  for (const f of mine) {
    const lastDelivery = f.messages.findLastIndex((m) => m.channel === channel && m.data !== undefined);
    if (lastDelivery < 0) continue;
    // A WebSocket frame must hold the connect reply after the messages (the
    // client takes the batch from the reply); a long-polling response is
    // handled whole, so the reply may come anywhere in it.
    const from = f.via === 'websocket' ? lastDelivery + 1 : 0;
    if (f.messages.findIndex((m, i) => i >= from && m.channel === '/meta/connect') < 0) {
      loose++;
      example ??= `${f.via} frame of ${f.messages.length} message(s): ${h.short(f.messages.map((m) => m.channel))}`;
    }
  }
  if (loose > 0) {
    problems.push(`${loose} frame(s) carried deliveries without a /meta/connect reply ` +
      `(WebSocket: after them), e.g. ${example}`);
  }
  return { problems, connects: connects.length, frames: mine.length, batches: numbers };
}

describe('CometD AckExtension through connection cuts', { skip, concurrency: 2 }, () => {
  let server;
  before(async () => { server = await h.startServer({ timeout: T }); }, { timeout: 15_000 });
  after(async () => { if (server) await server.stop(); });

  for (const tr of h.TRANSPORTS) {
    it(`gets all ${TOTAL} messages through ${CUTS} cuts (${tr.name}); a plain client is measured beside it`,
      { timeout: 180_000 }, async (t) => {
        const started = Date.now();
        const proxy = await startCutProxy(server.port);
        t.after(() => proxy.close());
        const proxied = `http://127.0.0.1:${proxy.port}/bayeux`;
        const channel = `/${h.uniqueName('ack')}/stream`;

        const acked = await proxiedSubscriber(t, tr, proxied, channel, { ack: true });
        const plain = await proxiedSubscriber(t, tr, proxied, channel, { ack: false });
        // Time-stamp what the harness's recorder keeps, to count the connect
        // replies after a cut.
        for (const sub of [acked, plain]) {
          const inbox = sub.cometd.compat.incoming;
          const push = inbox.push.bind(inbox);
          inbox.push = (m) => { m.compatAt = Date.now(); push(m); };
        }

        const pub = cometdClient(server.url, { websocket: true }, t); // straight to the server
        const hs = await h.cometdHandshake(pub);
        assert.equal(hs.successful, true, `publisher handshake: ${h.short(hs)}`);

        const perCut = TOTAL / CUTS;
        let lastCut = 0;
        const resets = [];
        const droppedPerCut = [];
        for (let cut = 0; cut < CUTS; cut++) {
          const from = cut * perCut;
          // Publish all but the last batch, then wait until both subscribers
          // reconnected after the previous cut (so that every cut kills a live
          // connection, not one still backing off), then publish the last batch
          // and cut while it is being delivered. Every other cut first turns
          // the connections into a dead link, so that the server writes that
          // batch into connections that never deliver it (lost in flight).
          await publishRange(pub, channel, from, from + perCut - BATCH);
          await h.waitUntil(() => connectsSince(acked, lastCut) > 0 && connectsSince(plain, lastCut) > 0 &&
            proxy.connections() >= 2, 30_000,
          () => `both subscribers to reconnect after cut ${cut} (connects since: ack ${connectsSince(acked, lastCut)}, ` +
            `plain ${connectsSince(plain, lastCut)}; proxied connections ${proxy.connections()})\n` +
            `ack client log:\n${h.describeCometdLog(acked.cometd, 8)}`);
          const deadLink = cut % 2 === 1;
          const droppedBefore = proxy.dropped();
          if (deadLink) proxy.drop();
          await publishRange(pub, channel, from + perCut - BATCH, from + perCut);
          if (deadLink) {
            // Until the server wrote into the dead link and stopped (a
            // long-polling client gets one response there; its next connect
            // never arrives).
            let seen = 0;
            let quiet = 0;
            await h.settle(h.waitUntil(() => {
              const d = proxy.dropped() - droppedBefore;
              quiet = d > 0 && d === seen ? quiet + 1 : 0;
              seen = d;
              return d >= 2 * BATCH * 40 || quiet >= 10; // 10 polls of 20 ms without news
            }, 3000, 'the server to write into the dead link'), 3500, 'dead link');
          }
          droppedPerCut.push(proxy.dropped() - droppedBefore);
          resets.push(proxy.cut());
          lastCut = Date.now();
        }
        const published = Date.now();

        // The ack client must end with every message; the plain one gets until
        // the ack client is complete and its own count stops moving.
        const ackDone = await h.settle(h.waitUntil(() => new Set(acked.received).size >= TOTAL, 60_000,
          () => `the AckExtension client to hold all ${TOTAL} (has ${new Set(acked.received).size})`), 61_000, 'ack');
        let last = -1;
        let still = 0;
        await h.settle(h.waitUntil(() => {
          const n = plain.received.length;
          still = n === last ? still + 1 : 0;
          last = n;
          return new Set(plain.received).size >= TOTAL || still >= 20; // 20 polls of 100 ms without news
        }, 30_000, 'the plain client to settle', 100), 31_000, 'plain');
        const finished = Date.now();

        const a = tally(acked.received);
        const p = tally(plain.received);
        const proto = ackProtocolProblems(acked, channel);
        const handshakes = (sub) => sub.cometd.compat.outgoing.count((m) => m.channel === '/meta/handshake');
        const report = {
          transport: tr.name,
          cutsResettingConnections: resets,
          bytesDroppedPerCut: droppedPerCut,
          publishMs: published - started,
          totalMs: finished - started,
          ack: { ...a, handshakes: handshakes(acked), transport: h.cometdTransport(acked.cometd), connectReplies: proto.connects, frames: proto.frames },
          plain: { ...p, handshakes: handshakes(plain), transport: h.cometdTransport(plain.cometd) },
        };
        t.diagnostic(JSON.stringify(report));
        console.error(`[guarantees] ${JSON.stringify(report)}`);

        assert.equal(resets.filter((n) => n > 0).length, CUTS, `every cut must reset live connections: ${resets}`);
        assert.ok(ackDone.ok, `${ackDone.error && ackDone.error.message}: lost ${a.lost} (${a.lostRanges}); ` +
          `protocol: ${proto.problems.join('; ') || 'no problem seen'}`);
        assert.equal(a.lost, 0, `the AckExtension client must lose nothing; lost ${a.lost}: ${a.lostRanges}`);
        assert.deepEqual(proto.problems, [], 'the server must follow the acknowledgement protocol');
        assert.equal(report.ack.handshakes, 1, 'the ack session must survive the cuts (no new handshake)');
        assert.equal(report.ack.transport, tr.name, `the ack client must still be on ${tr.name}`);
      });
  }
});

describe('bayou --no-ack', { skip }, () => {
  let server;
  before(async () => { server = await h.startServer({ timeout: T, args: ['--no-ack'] }); }, { timeout: 15_000 });
  after(async () => { if (server) await server.stop(); });

  it('does not offer acknowledgements to a client that asks', { timeout: 20_000 }, async (t) => {
    const cometd = cometdClient(server.url, { websocket: true }, t);
    cometd.registerExtension('ack', new AckExtension());
    const reply = await h.cometdHandshake(cometd);
    assert.equal(reply.successful, true, `handshake must succeed: ${h.short(reply)}`);
    const sent = cometd.compat.outgoing.find((m) => m.channel === '/meta/handshake');
    assert.equal(sent.ext && sent.ext.ack, true, 'the client asked for acknowledgements');
    const ack = reply.ext && reply.ext.ack;
    assert.ok(ack !== true && !(ack && ack.enabled === true), `the reply must not enable them: ${h.short(reply.ext)}`);
    const channel = `/${h.uniqueName('noack')}`;
    const sub = await h.cometdSubscribe(cometd, channel);
    assert.equal(sub.reply.successful, true);
    await h.cometdPublish(cometd, channel, { n: 1 });
    await sub.inbox.waitFor((m) => m.data.n === 1, 5000, 'a round trip');
    await h.waitUntil(() => cometd.compat.outgoing.count((m) => m.channel === '/meta/connect') >= 2, 8000,
      'a second /meta/connect');
    const acking = cometd.compat.outgoing.items.filter((m) => m.channel === '/meta/connect' && m.ext && 'ack' in m.ext);
    assert.deepEqual(acking, [], 'the client sends no ext.ack on its connects');
  });
});

// ---------------------------------------------------------------------------
// b. the jsforce Replay extension for faye

const HISTORY = 100;
const SMALL = 5;

describe('jsforce StreamingExtension.Replay (faye) against history', { skip }, () => {
  let server;
  before(async () => {
    server = await h.startServer({
      timeout: T,
      args: ['--history', `/topic/**=${HISTORY}:10m`, '--history', `/small/**=${SMALL}:10m`],
    });
  }, { timeout: 15_000 });
  after(async () => { if (server) await server.stop(); });

  /** Publishes {n} for each n through a direct faye publisher; returns nothing. */
  async function publish(t, channel, ns) {
    const pub = h.fayeClient(server.url, { websocket: true }, t);
    await h.fayeConnect(pub);
    for (const n of ns) await h.fayePublish(pub, channel, { n });
  }

  /** A faye client with the jsforce Replay extension for (channel, replayId), subscribed. */
  async function replaying(t, tr, channel, replayId) {
    const client = h.fayeClient(server.url, { websocket: tr.websocket }, t);
    client.addExtension(new Replay(channel, replayId));
    const inbox = new h.Inbox(`replay ${replayId} on ${channel}`);
    const subscription = client.subscribe(channel, (data) => inbox.push(data));
    const outcome = await h.settle(subscription, 5000, `subscribe to ${channel} with replay ${replayId}`);
    return { client, inbox, subscription, outcome };
  }

  /** The replayIds (ext.replayId) the server sent with each delivery on channel, by n. */
  function positions(client, channel) {
    return h.deliveries(client, channel).filter((m) => m.channel === channel)
      .map((m) => ({ n: m.data.n, replayId: m.ext && m.ext.replayId, epoch: m.ext && m.ext.epoch }));
  }

  const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);
  const ns = (inbox) => inbox.items.map((d) => d.n);

  for (const tr of h.TRANSPORTS) {
    it(`-2 replays every retained message, then live ones (${tr.name})`, { timeout: 30_000 }, async (t) => {
      const channel = `/topic/${h.uniqueName('all')}/x`;
      await publish(t, channel, range(0, 10));
      const sub = await replaying(t, tr, channel, -2);
      assert.ok(sub.outcome.ok, `subscribe with replay -2 must succeed: ${h.short(sub.outcome.error)}`);
      await sub.inbox.waitCount(() => true, 10, 5000, 'the 10 retained messages');
      await publish(t, channel, [10, 11, 12]);
      await sub.inbox.waitFor((d) => d.n === 12, 5000, 'the live messages');
      assert.deepEqual(ns(sub.inbox), range(0, 13), 'all 10 retained messages once, in order, then the 3 live ones');
      const pos = positions(sub.client, channel);
      for (const p of pos) {
        assert.equal(typeof p.replayId, 'number', `every delivery must carry ext.replayId: ${h.short(pos)}`);
        assert.equal(typeof p.epoch, 'string', `every delivery must carry ext.epoch: ${h.short(pos)}`);
      }
      const ids = pos.map((p) => p.replayId);
      assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), `replayIds must increase: ${ids}`);
      assert.equal(h.fayeTransport(sub.client).type, tr.name);
    });

    it(`a saved replayId N replays exactly the messages after N (${tr.name})`, { timeout: 30_000 }, async (t) => {
      const channel = `/topic/${h.uniqueName('from')}/x`;
      // A first client reads the positions as they are delivered live.
      const first = await replaying(t, tr, channel, -1);
      assert.ok(first.outcome.ok, `subscribe with replay -1 must succeed: ${h.short(first.outcome.error)}`);
      await publish(t, channel, range(0, 10));
      await first.inbox.waitFor((d) => d.n === 9, 5000, 'the first client to get all 10');
      const saved = positions(first.client, channel).find((p) => p.n === 4);
      assert.ok(saved && typeof saved.replayId === 'number', `message 4 must carry ext.replayId: ${h.short(saved)}`);

      const again = await replaying(t, tr, channel, saved.replayId);
      assert.ok(again.outcome.ok, `subscribe with replay ${saved.replayId} must succeed: ${h.short(again.outcome.error)}`);
      await again.inbox.waitCount(() => true, 5, 5000, `the 5 messages after replayId ${saved.replayId}`);
      await publish(t, channel, [10]);
      await again.inbox.waitFor((d) => d.n === 10, 5000, 'the live message');
      assert.deepEqual(ns(again.inbox), [5, 6, 7, 8, 9, 10], `exactly the messages after replayId ${saved.replayId}, then live`);
    });

    it(`-1 gets only new messages (${tr.name})`, { timeout: 30_000 }, async (t) => {
      const channel = `/topic/${h.uniqueName('new')}/x`;
      await publish(t, channel, range(0, 10));
      const sub = await replaying(t, tr, channel, -1);
      assert.ok(sub.outcome.ok, `subscribe with replay -1 must succeed: ${h.short(sub.outcome.error)}`);
      await publish(t, channel, [10, 11]);
      await sub.inbox.waitFor((d) => d.n === 11, 5000, 'the live messages');
      assert.deepEqual(ns(sub.inbox), [10, 11], 'only the messages published after the subscribe');
    });

    it(`a replayId no longer retained gets a subscribe error (${tr.name})`, { timeout: 30_000 }, async (t) => {
      const channel = `/small/${h.uniqueName('lost')}/x`;
      const first = await replaying(t, tr, channel, -1);
      assert.ok(first.outcome.ok, `subscribe with replay -1 must succeed: ${h.short(first.outcome.error)}`);
      await publish(t, channel, range(0, 2 * SMALL));
      await first.inbox.waitFor((d) => d.n === 2 * SMALL - 1, 5000, 'the first client to get every message');
      const oldest = positions(first.client, channel)[0];
      assert.ok(oldest && typeof oldest.replayId === 'number', `message 0 must carry ext.replayId: ${h.short(oldest)}`);

      const late = await replaying(t, tr, channel, oldest.replayId);
      const errback = h.deferred();
      late.subscription.errback((error) => errback.resolve(error));
      assert.equal(late.outcome.ok, false, `a replay from ${oldest.replayId} (history ${SMALL}, ${2 * SMALL} published) must fail`);
      const error = await h.withTimeout(errback.promise, 1000, 'the subscription errback');
      // faye's Error.parse reads the code only from an error string that
      // follows the Bayeux grammar: its message part may hold letters,
      // digits, spaces and - _ ! ~ ( ) $ @ / * . only (no ; , : { }).
      assert.equal(error.code, 400, `faye must read a 400 from the error (code null: the string breaks the Bayeux ` +
        `error grammar that faye parses): ${JSON.stringify(error.message)}`);
      const reply = late.client.compat.incoming.find((m) => m.channel === '/meta/subscribe' && m.subscription === channel);
      assert.equal(reply && reply.successful, false, `the subscribe reply must be unsuccessful: ${h.short(reply)}`);
      t.diagnostic(`lost-position subscribe reply: ${h.short(reply)}`);
      await publish(t, channel, [99]);
      await first.inbox.waitFor((d) => d.n === 99, 5000, 'the first client to get a later message');
      assert.deepEqual(ns(late.inbox), [], 'the refused subscriber gets nothing');
    });
  }

  it('a handshake with ext.replay true succeeds, and replay works after it', { timeout: 30_000 }, async (t) => {
    const channel = `/topic/${h.uniqueName('hs')}/x`;
    await publish(t, channel, range(0, 3));
    const client = h.fayeClient(server.url, { websocket: true }, t);
    let sent;
    client.addExtension({
      outgoing(m, callback) {
        if (m.channel === '/meta/handshake') {
          m.ext = { ...m.ext, replay: true };
          sent = structuredClone(m);
        }
        callback(m);
      },
    });
    client.addExtension(new Replay(channel, -2));
    const inbox = new h.Inbox('replay after ext.replay handshake');
    const outcome = await h.settle(client.subscribe(channel, (d) => inbox.push(d)), 5000, 'subscribe');
    const hs = client.compat.incoming.find((m) => m.channel === '/meta/handshake');
    assert.equal(hs && hs.successful, true, `the handshake must succeed: ${h.short(hs)}`);
    assert.equal(sent && sent.ext && sent.ext.replay, true, `the handshake carried ext.replay true: ${h.short(sent)}`);
    t.diagnostic(`handshake reply ext: ${h.short(hs.ext)} (Salesforce answers ext.replay true; jsforce's Replay ` +
      'enables itself on it when built without a replayId)');
    assert.ok(outcome.ok, `subscribe must succeed: ${h.short(outcome.error)}`);
    await inbox.waitCount(() => true, 3, 5000, 'the 3 retained messages');
    assert.deepEqual(inbox.items.map((d) => d.n), [0, 1, 2]);
  });
});

describe('bayou --replay-lost report', { skip }, () => {
  let server;
  before(async () => {
    server = await h.startServer({ timeout: T, args: ['--history', `/small/**=${SMALL}`, '--replay-lost', 'report'] });
  }, { timeout: 15_000 });
  after(async () => { if (server) await server.stop(); });

  it('subscribes from a lost position and says the messages were not recovered', { timeout: 30_000 }, async (t) => {
    const channel = `/small/${h.uniqueName('report')}/x`;
    const pub = h.fayeClient(server.url, { websocket: true }, t);
    const first = await h.fayeSubscribe(pub, channel);
    for (let n = 0; n < 2 * SMALL; n++) await h.fayePublish(pub, channel, { n });
    await first.inbox.waitFor((m) => m.data.n === 2 * SMALL - 1, 5000, 'every message live');
    const oldest = h.deliveries(pub, channel)[0];
    const from = oldest && oldest.ext && oldest.ext.replayId;
    assert.equal(typeof from, 'number', `deliveries carry ext.replayId: ${h.short(oldest)}`);

    const client = h.fayeClient(server.url, { websocket: true }, t);
    client.addExtension(new Replay(channel, from));
    const inbox = new h.Inbox('late subscriber');
    const outcome = await h.settle(client.subscribe(channel, (d) => inbox.push(d)), 5000, 'subscribe');
    assert.ok(outcome.ok, `with --replay-lost report the subscribe succeeds: ${h.short(outcome.error)}`);
    const reply = client.compat.incoming.find((m) => m.channel === '/meta/subscribe' && m.subscription === channel);
    const report = reply && reply.ext && reply.ext.replay && reply.ext.replay[channel];
    assert.equal(report && report.recovered, false, `the reply's ext.replay says not recovered: ${h.short(reply)}`);
    await h.fayePublish(pub, channel, { n: 99 });
    await inbox.waitFor((d) => d.n === 99, 5000, 'a live message after the report');
    t.diagnostic(`report reply ext: ${h.short(reply.ext)}; delivered: ${inbox.items.map((d) => d.n)}`);
  });
});
