// The real faye 1.4.3 Node client against the server under test, every case
// over WebSocket (faye's default) and over long-polling
// (client.disable('websocket')), asserting the transport actually in use.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../harness.mjs';

const T = 3; // server --timeout (seconds)
let server;

before(async () => { server = await h.startServer({ timeout: T }); }, { timeout: 15_000 });
after(async () => { if (server) await server.stop(); });

/** A connected faye client on the wanted transport, subscribed to `channel`. */
async function subscribed(t, tr, channel) {
  const client = h.fayeClient(server.url, { websocket: tr.websocket }, t);
  const sub = await h.fayeSubscribe(client, channel);
  await h.waitFayeTransport(client, tr.name);
  return { client, ...sub };
}

const dataOf = (items) => items.map((m) => m.data);

for (const tr of h.TRANSPORTS) {
  describe(`faye client over ${tr.name}`, () => {
    it('subscribes, publishes, receives its own and another client\'s messages', { timeout: 20_000 }, async (t) => {
      const ch = `/${h.uniqueName('basic')}/room`;
      const a = await subscribed(t, tr, ch);
      const b = await subscribed(t, tr, ch);

      await h.fayePublish(a.client, ch, { from: 'a', n: 1 }); // publish promise resolves = server acked it
      await a.inbox.waitFor((m) => m.data.from === 'a', 5000, 'A to receive its own message');
      await b.inbox.waitFor((m) => m.data.from === 'a', 5000, 'B to receive A\'s message');

      await h.fayePublish(b.client, ch, { from: 'b', n: 2 });
      await a.inbox.waitFor((m) => m.data.from === 'b', 5000, 'A to receive B\'s message');
      await b.inbox.waitFor((m) => m.data.from === 'b', 5000, 'B to receive its own message');

      assert.deepEqual(dataOf(a.inbox.items), [{ from: 'a', n: 1 }, { from: 'b', n: 2 }], 'A received both messages once, in order');
      assert.deepEqual(dataOf(b.inbox.items), [{ from: 'a', n: 1 }, { from: 'b', n: 2 }], 'B received both messages once, in order');
      for (const c of [a.client, b.client]) {
        assert.equal(h.fayeTransport(c).type, tr.name, `client still on ${tr.name} at the end`);
      }
    });

    it('gets a handshake reply with a clientId and the right connection types', { timeout: 20_000 }, async (t) => {
      const { client } = await subscribed(t, tr, `/${h.uniqueName('hs')}`);
      const hs = client.compat.incoming.find((m) => m.channel === '/meta/handshake' && m.successful);
      assert.ok(hs, 'expected a successful /meta/handshake reply');
      assert.ok(typeof hs.clientId === 'string' && hs.clientId.length > 0, `handshake reply must carry a clientId: ${h.short(hs)}`);
      assert.equal(client._dispatcher.clientId, hs.clientId);
      for (const type of ['websocket', 'long-polling']) {
        assert.ok(hs.supportedConnectionTypes.includes(type),
          `supportedConnectionTypes should include "${type}": ${h.short(hs.supportedConnectionTypes)}`);
      }
      if (h.isBayou) {
        assert.ok(!hs.supportedConnectionTypes.includes('in-process'),
          `Bayou must not advertise "in-process": ${h.short(hs.supportedConnectionTypes)}`);
      }
    });

    it('routes wildcards: /a/* gets /a/b only, /a/** gets /a/b and /a/b/c, /* gets /a', { timeout: 20_000 }, async (t) => {
      const root = `/${h.uniqueName('wild')}`; // plays the role of "/a"
      const one = `/${h.uniqueName('one')}`; // a one-segment channel for "/*"
      const star = await subscribed(t, tr, `${root}/*`);
      const stars = await subscribed(t, tr, `${root}/**`);
      const top = await subscribed(t, tr, '/*');
      const pub = h.fayeClient(server.url, { websocket: tr.websocket }, t);
      await h.fayeConnect(pub);

      for (const ch of [`${root}/b`, `${root}/b/c`, root, one]) {
        await h.fayePublish(pub, ch, { ch });
      }
      // Per-client FIFO: once the last message each subscriber must get has
      // arrived, anything wrongly routed before it has arrived too.
      await star.inbox.waitFor((m) => m.channel === `${root}/b`, 5000, `${root}/* to get ${root}/b`);
      await stars.inbox.waitFor((m) => m.channel === `${root}/b/c`, 5000, `${root}/** to get ${root}/b/c`);
      await top.inbox.waitFor((m) => m.channel === one, 5000, `/* to get ${one}`); // published last
      await h.sleep(300);

      // Check what the server sent (before the client's own wildcard filtering).
      const got = (c, prefix) => h.deliveries(c, prefix).map((m) => m.channel);
      assert.deepEqual(got(star.client, root), [`${root}/b`], `${root}/* must receive ${root}/b and nothing else`);
      assert.deepEqual(got(stars.client, root), [`${root}/b`, `${root}/b/c`],
        `${root}/** must receive ${root}/b and ${root}/b/c but not ${root} itself`);
      assert.deepEqual(got(top.client, root), [root], `/* must receive ${root} (one segment) but not ${root}/b or ${root}/b/c`);
      assert.deepEqual(got(top.client, one), [one], `/* must receive the one-segment channel ${one} once`);
      assert.deepEqual(star.inbox.items.map((m) => m.channel), [`${root}/b`], 'the /a/* callback fired once');
      assert.deepEqual(stars.inbox.items.map((m) => m.channel), [`${root}/b`, `${root}/b/c`], 'the /a/** callback fired twice');
    });

    it('delivers ONE copy to a client subscribed to both /a/* and /a/b', { timeout: 20_000 }, async (t) => {
      const root = `/${h.uniqueName('dup')}`;
      const s = await subscribed(t, tr, `${root}/*`);
      const exact = await h.fayeSubscribe(s.client, `${root}/b`);
      const pub = h.fayeClient(server.url, { websocket: tr.websocket }, t);
      await h.fayeConnect(pub);
      for (let n = 1; n <= 3; n++) await h.fayePublish(pub, `${root}/b`, { n });
      await s.inbox.waitCount(() => true, 3, 5000, `${root}/* callback to fire 3 times`);
      await exact.inbox.waitCount(() => true, 3, 5000, `${root}/b callback to fire 3 times`);
      await h.sleep(500); // give duplicates time to show up

      assert.deepEqual(dataOf(h.deliveries(s.client, root)), [{ n: 1 }, { n: 2 }, { n: 3 }],
        'the server must send exactly one copy per publish to this client');
      assert.deepEqual(dataOf(s.inbox.items), [{ n: 1 }, { n: 2 }, { n: 3 }], `the ${root}/* callback fires exactly once per publish`);
      assert.deepEqual(dataOf(exact.inbox.items), [{ n: 1 }, { n: 2 }, { n: 3 }], `the ${root}/b callback fires exactly once per publish`);
    });

    it('does not let a published advice/successful reach subscribers (connect loop survives)',
      { timeout: 25_000, skip: h.bayouOnly('faye forwards advice in broadcasts, reference I1') }, async (t) => {
        const ch = `/${h.uniqueName('inject')}`;
        const s = await subscribed(t, tr, ch);
        const res = await h.rawPost(server.url,
          '{"channel":"' + ch + '","data":"hi","advice":{"reconnect":"none"},"successful":true}');
        assert.equal(res.status, 200, `raw publish should get HTTP 200, got ${res.status} ${res.body}`);
        assert.ok(Array.isArray(res.json) && res.json.some((r) => r.channel === ch && r.successful === true),
          `raw publish should be acked successful: ${res.body}`);

        await s.inbox.waitFor((m) => m.data === 'hi', 5000, 'the subscriber to receive "hi"');
        const delivered = h.deliveries(s.client, ch).find((m) => m.data === 'hi');
        const extra = Object.keys(delivered).filter((k) => !['channel', 'data', 'id', 'ext'].includes(k));
        assert.deepEqual(extra, [], `broadcasts must carry only channel/data/id/ext: ${h.short(delivered)}`);
        // Over WebSocket a faye client that did adopt reconnect:"none" can be
        // rescued by the next connect reply's advice, so check right away too.
        assert.notEqual(s.client._advice.reconnect, 'none', 'the client must not have adopted reconnect:"none"');

        // The connect loop must go on: new /meta/connect messages after > T seconds.
        const connectsBefore = s.client.compat.outgoing.count((m) => m.channel === '/meta/connect');
        await h.sleep(T * 1000 + 1500);
        const connectsAfter = s.client.compat.outgoing.count((m) => m.channel === '/meta/connect');
        assert.ok(connectsAfter > connectsBefore,
          `the subscriber should keep sending /meta/connect after the injected advice (before ${connectsBefore}, after ${connectsAfter})`);

        const pub = h.fayeClient(server.url, { websocket: tr.websocket }, t);
        await h.fayeConnect(pub);
        await h.fayePublish(pub, ch, 'later');
        await s.inbox.waitFor((m) => m.data === 'later', 5000, 'the subscriber to still receive a later publish');
        assert.notEqual(s.client._advice.reconnect, 'none', 'the client must still not have reconnect:"none"');
      });

    it('rejects subscribes to /meta/foo and to an invalid channel name', { timeout: 20_000 }, async (t) => {
      const ch = `/${h.uniqueName('rej')}`;
      const s = await subscribed(t, tr, ch);

      const meta = await h.settle(s.client.subscribe('/meta/foo', () => {}), 5000, 'subscribe /meta/foo');
      assert.equal(meta.ok, false, 'subscribe to /meta/foo must be rejected');
      assert.ok(!(meta.error instanceof Error && /timed out/.test(meta.error.message)),
        `subscribe to /meta/foo must be rejected by the server, not left unanswered: ${meta.error && meta.error.message}`);
      assert.equal(meta.error.code, 403, `expected a 403 error for /meta/foo, got ${h.short(meta.error)}`);

      const invalid = '/invalid/*/bar';
      let outcome;
      try {
        outcome = await h.settle(s.client.subscribe(invalid, () => {}), 5000, `subscribe ${invalid}`);
      } catch (e) {
        outcome = { ok: false, error: e, sync: true }; // rejected client-side
      }
      assert.equal(outcome.ok, false, `subscribe to ${invalid} must be rejected`);
      assert.ok(!(outcome.error instanceof Error && /timed out/.test(outcome.error.message)),
        `subscribe to ${invalid} must be answered: ${outcome.error && outcome.error.message}`);

      // The client is still healthy afterwards.
      await h.fayePublish(s.client, ch, 'still-alive');
      await s.inbox.waitFor((m) => m.data === 'still-alive', 5000, 'a round trip after the rejected subscribes');
    });

    it('carries unicode and a 256 KiB string intact', { timeout: 20_000 }, async (t) => {
      const ch = `/${h.uniqueName('uni')}`;
      const s = await subscribed(t, tr, ch);
      const pub = h.fayeClient(server.url, { websocket: tr.websocket }, t);
      await h.fayeConnect(pub);
      const unicode = { text: 'café é – 😀 👩‍💻 \u2028 line-sep \u2029 para-sep "quotes" \\ \u0000 nul', 'ключ': 'значение' };
      await h.fayePublish(pub, ch, unicode);
      const unit = 'abcdefghij0123456789é😀\u2028'; // multi-byte chars all along the payload
      let big = unit.repeat(Math.ceil(256 * 1024 / unit.length)).slice(0, 256 * 1024);
      if (/[\uD800-\uDBFF]$/.test(big)) big = big.slice(0, -1) + 'x'; // don't end on half a surrogate pair
      assert.equal(big.length, 256 * 1024);
      await h.fayePublish(pub, ch, { big }, 10_000);
      await s.inbox.waitCount(() => true, 2, 10_000, 'both messages to arrive');
      assert.deepEqual(s.inbox.items[0].data, unicode, 'unicode data must arrive unchanged');
      const got = s.inbox.items[1].data.big;
      assert.equal(typeof got, 'string', 'the 256 KiB payload must arrive as a string');
      assert.equal(got.length, big.length, 'the 256 KiB payload must arrive with its full length');
      assert.ok(got === big, 'the 256 KiB payload must arrive byte-for-byte');
      assert.equal(h.fayeTransport(s.client).type, tr.name, `subscriber still on ${tr.name}`);
    });
  });
}

describe('faye client recovery after a server restart', { concurrency: 2 }, () => {
  for (const tr of h.TRANSPORTS) {
    it(`re-handshakes, re-subscribes and receives again (${tr.name})`, { timeout: 40_000 }, async (t) => {
      const srv = await h.startServer({ timeout: T });
      const clients = [];
      const mk = () => { const c = h.fayeClient(srv.url, { websocket: tr.websocket }); clients.push(c); return c; };
      // Clients first (so they disconnect cleanly), then the server.
      t.after(async () => {
        await Promise.all(clients.map((c) => h.destroyFayeClient(c)));
        await srv.stop();
      });
      const ch = `/${h.uniqueName('rec')}`;
      const client = mk();
      const { inbox } = await h.fayeSubscribe(client, ch);
      await h.waitFayeTransport(client, tr.name);
      const pub1 = mk();
      await h.fayePublish(pub1, ch, 'before');
      await inbox.waitFor((m) => m.data === 'before', 5000, 'delivery before the restart');
      await h.destroyFayeClient(pub1);

      const oldId = client._dispatcher.clientId;
      const mark = client.compat.incoming.items.length;
      await srv.stop();
      await h.sleep(500);
      await srv.restart();
      const restartedAt = Date.now();

      const since = () => client.compat.incoming.items.slice(mark);
      const isNewHandshake = (m) => m.channel === '/meta/handshake' && m.successful && m.clientId !== oldId;
      // The faye client discovers the lost session on its next connect (retried
      // every `retry` = 5 s while the server is down), re-handshakes and
      // re-subscribes by itself.
      await waitFor(() => since().find(isNewHandshake), 15_000,
        () => `a new successful handshake after the restart (seen: ${h.short(since().map((m) => [m.channel, m.successful, m.error]), 600)})`);
      const items = since();
      const hsIndex = items.findIndex(isNewHandshake);
      const rejections = items.slice(0, hsIndex).filter((m) => m.successful === false && m.advice && m.advice.reconnect === 'handshake');
      assert.ok(rejections.length > 0,
        `before re-handshaking the client should get a rejection with advice.reconnect "handshake"; got ${h.short(items.slice(0, hsIndex), 800)}`);
      // Bayou answers the connect it holds when it stops with a 503 and that
      // advice (see drain.test.mjs); faye's server answers it as usual, and
      // the restarted server refuses the old clientId with a 401.
      assert.ok(rejections.some((m) => /^401:/.test(String(m.error)) || (h.isBayou && m.error === '503::Server shutting down')),
        `the old session should be refused (401 unknown client, or Bayou's 503 when it stops): ${h.short(rejections, 800)}`);
      await waitFor(() => since().slice(hsIndex).find((m) => m.channel === '/meta/subscribe' && m.successful && m.subscription === ch),
        10_000, `the client to re-subscribe to ${ch}`);
      await h.waitFayeTransport(client, tr.name, 10_000);

      const pub2 = mk();
      await h.fayePublish(pub2, ch, 'after');
      await inbox.waitFor((m) => m.data === 'after', 5000, 'delivery after the restart');
      t.diagnostic(`recovered ${Date.now() - restartedAt} ms after the restart`);
      assert.notEqual(client._dispatcher.clientId, oldId, 'the client must be using a new clientId');
    });
  }
});

function waitFor(fn, ms, what) { return h.waitUntil(fn, ms, what, 50); }
