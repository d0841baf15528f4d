// The real CometD 9 JavaScript client (in Node through cometd-nodejs-client 2)
// against the server under test, over WebSocket and over long-polling
// (cometd.websocketEnabled = false), asserting the transport in use.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../harness.mjs';

const T = 3; // server --timeout (seconds) for most cases
let server;

before(async () => { server = await h.startServer({ timeout: T }); }, { timeout: 15_000 });
after(async () => { if (server) await server.stop(); });

/** Asserts the client logged nothing that means it disliked a server reply. */
function assertCleanLog(cometd) {
  const problems = h.cometdProblems(cometd);
  assert.deepEqual(problems.map((e) => `[${e.level}] ${e.text.slice(0, 300)}`), [],
    'the CometD client must not log warnings, "Mismatched /meta/connect reply", "Unknown Bayeux Message" or exceptions');
}

/** A handshaken client on the wanted transport. */
async function connected(t, tr, url = server.url) {
  const cometd = h.cometdClient(url, { websocket: tr.websocket }, t);
  const reply = await h.cometdHandshake(cometd);
  assert.equal(reply.successful, true, `handshake must succeed: ${h.short(reply)}\n${h.describeCometdLog(cometd)}`);
  assertTransport(cometd, tr);
  return { cometd, reply };
}

/** "connecting" is the client's normal state between a connect reply and the next connect. */
function assertConnectedStatus(cometd) {
  assert.ok(['connected', 'connecting'].includes(cometd.getStatus()),
    `the client must still be connected (status "${cometd.getStatus()}")`);
}

/** The client reports the transport, and its messages really travel that way. */
function assertTransport(cometd, tr) {
  assert.equal(h.cometdTransport(cometd), tr.name, `CometD must be using the ${tr.name} transport`);
  const sockets = h.cometdOwnSockets(cometd);
  const requests = h.cometdOwnRequests(cometd);
  if (tr.websocket) {
    const open = sockets.filter((ws) => ws.readyState === 1);
    assert.equal(open.length, 1, `exactly one open WebSocket expected, found ${open.length} (of ${sockets.length})`);
    assert.equal(requests.length, 0, `no long-polling request may carry this client's messages, found ${requests.length}`);
  } else {
    assert.equal(sockets.length, 0, 'no WebSocket may carry messages with websocketEnabled=false');
    assert.ok(requests.length > 0, 'the client\'s messages must travel in long-polling requests');
  }
}

for (const tr of h.TRANSPORTS) {
  describe(`CometD client over ${tr.name}`, () => {
    it('handshakes successfully with a clientId and the right connection types', { timeout: 20_000 }, async (t) => {
      const { cometd, reply } = await connected(t, tr);
      assert.ok(typeof reply.clientId === 'string' && reply.clientId.length > 0, `handshake must carry a clientId: ${h.short(reply)}`);
      assert.equal(cometd.getClientId(), reply.clientId);
      assert.ok(Array.isArray(reply.supportedConnectionTypes) && reply.supportedConnectionTypes.includes(tr.name),
        `supportedConnectionTypes must include ${tr.name}: ${h.short(reply.supportedConnectionTypes)}`);
      if (h.isBayou) {
        assert.ok(!reply.supportedConnectionTypes.includes('in-process'),
          `Bayou must not advertise "in-process": ${h.short(reply.supportedConnectionTypes)}`);
      }
      assertCleanLog(cometd);
    });

    it('subscribes with /foo/* and /bar/** and receives the concrete channels', { timeout: 20_000 }, async (t) => {
      const { cometd } = await connected(t, tr);
      const root = `/${h.uniqueName('cw')}`;
      const foo = await h.cometdSubscribe(cometd, `${root}/foo/*`);
      const bar = await h.cometdSubscribe(cometd, `${root}/bar/**`);
      for (const [sub, pattern] of [[foo, `${root}/foo/*`], [bar, `${root}/bar/**`]]) {
        assert.equal(sub.reply.successful, true, `subscribe ${pattern} must succeed: ${h.short(sub.reply)}`);
        assert.equal(sub.reply.subscription, pattern, 'the subscribe reply must echo the subscription');
      }
      const published = [`${root}/foo/x`, `${root}/foo/x/y`, `${root}/bar/x/y`, `${root}/bar/z`];
      for (const ch of published) {
        const ack = await h.cometdPublish(cometd, ch, { ch, n: published.indexOf(ch) });
        assert.equal(ack.successful, true, `publish to ${ch} must be acked successful: ${h.short(ack)}`);
      }
      await bar.inbox.waitFor((m) => m.channel === `${root}/bar/z`, 5000, `${root}/bar/** to get ${root}/bar/z`);
      await h.sleep(200);

      assert.deepEqual(foo.inbox.items, [{ channel: `${root}/foo/x`, data: { ch: `${root}/foo/x`, n: 0 } }],
        `${root}/foo/* must get exactly ${root}/foo/x, with the concrete channel name`);
      assert.deepEqual(bar.inbox.items.map((m) => m.channel), [`${root}/bar/x/y`, `${root}/bar/z`],
        `${root}/bar/** must get ${root}/bar/x/y and ${root}/bar/z, with the concrete channel names`);
      assert.deepEqual(h.deliveries(cometd, root).map((m) => m.channel), [`${root}/foo/x`, `${root}/bar/x/y`, `${root}/bar/z`],
        'the server must send exactly the matching messages, once each');
      assertTransport(cometd, tr);
      assertCleanLog(cometd);
    });

    it('answers a batch of 2 subscribes and 2 publishes', { timeout: 20_000 }, async (t) => {
      const { cometd } = await connected(t, tr);
      const root = `/${h.uniqueName('cb')}`;
      const replies = new h.Inbox('batch replies');
      const msgs = new h.Inbox('batch messages');
      cometd.batch(() => {
        cometd.subscribe(`${root}/a`, (m) => msgs.push(m.channel), (r) => replies.push(['subscribe a', r]));
        cometd.subscribe(`${root}/b`, (m) => msgs.push(m.channel), (r) => replies.push(['subscribe b', r]));
        cometd.publish(`${root}/a`, { n: 1 }, (r) => replies.push(['publish a', r]));
        cometd.publish(`${root}/b`, { n: 2 }, (r) => replies.push(['publish b', r]));
      });
      await replies.waitCount(() => true, 4, 5000, 'all four batch callbacks');
      for (const [what, r] of replies.items) {
        assert.equal(r.successful, true, `${what} in the batch must be successful: ${h.short(r)}`);
      }
      // The batch is processed in order: subscribed before the publishes.
      await msgs.waitCount(() => true, 2, 5000, 'both batch publishes to be delivered');
      assert.deepEqual([...msgs.items].sort(), [`${root}/a`, `${root}/b`]);
      assertCleanLog(cometd);
    });

    it('subscribes to /service/echo; a /** subscriber does not see /service traffic', { timeout: 20_000 }, async (t) => {
      const a = (await connected(t, tr)).cometd;
      const b = (await connected(t, tr)).cometd;
      const root = `/${h.uniqueName('cs')}`;
      const svc = await h.cometdSubscribe(a, '/service/echo');
      if (h.isBayou) {
        assert.equal(svc.reply.successful, true, `subscribe /service/echo must succeed on Bayou: ${h.short(svc.reply)}`);
      } else {
        assert.equal(svc.reply.successful, false, 'faye refuses /service subscriptions (403)');
        assert.match(String(svc.reply.error), /^403:/);
      }
      const all = await h.cometdSubscribe(b, '/**');
      assert.equal(all.reply.successful, true, `subscribe /** must succeed: ${h.short(all.reply)}`);

      const marker = h.uniqueName('echo');
      const ack = await h.cometdPublish(a, '/service/echo', { marker });
      assert.notEqual(ack, undefined, 'the /service/echo publish must be acked');
      await h.cometdPublish(a, `${root}/after`, { after: marker });
      await all.inbox.waitFor((m) => m.channel === `${root}/after`, 5000, 'the /** subscriber to get the follow-up message');
      await h.sleep(200);
      const leaked = h.deliveries(b, '/service/');
      if (h.isBayou || h.FORCE_ALL) {
        assert.deepEqual(leaked, [], 'a /** subscriber must not receive /service/** messages');
      } else {
        // faye routes /service publishes to /** subscribers (reference S9).
        assert.ok(leaked.some((m) => m.data.marker === marker), 'faye is expected to leak /service to /**');
      }
      assertCleanLog(a);
      assertCleanLog(b);
    });

    it('acks publishes to /meta/foo and to invalid channels as unsuccessful and keeps the connection', { timeout: 20_000 }, async (t) => {
      const { cometd, reply } = await connected(t, tr);
      const root = `/${h.uniqueName('ce')}`;
      // The client itself refuses /meta/* publishes, so an outgoing extension
      // rewrites the channel of one publish: the server sees a real /meta/foo publish.
      assert.throws(() => cometd.publish('/meta/foo', {}), /meta/, 'CometD refuses /meta publishes client-side');
      cometd.registerExtension('rewrite-to-meta-foo', {
        outgoing(m) { if (m.channel === `${root}/to-meta-foo`) m.channel = '/meta/foo'; return m; },
      });
      const socketsBefore = h.cometdOwnSockets(cometd).length;
      const metaAck = await h.cometdPublish(cometd, `${root}/to-meta-foo`, { x: 1 });
      assert.equal(metaAck.successful, false, `a publish to /meta/foo must be acked unsuccessful: ${h.short(metaAck)}`);
      assert.match(String(metaAck.error), /^\d{3}:/, `the error must be a Bayeux error string: ${h.short(metaAck)}`);

      for (const bad of [`${root}/*`, `${root}/**`]) {
        const ack = await h.cometdPublish(cometd, bad, { x: 1 });
        assert.equal(ack.successful, false, `a publish to ${bad} must be acked unsuccessful: ${h.short(ack)}`);
        assert.match(String(ack.error), /^\d{3}:/, `the error must be a Bayeux error string: ${h.short(ack)}`);
      }

      // Same session, same connection, still working.
      const ok = await h.cometdSubscribe(cometd, `${root}/ok`);
      assert.equal(ok.reply.successful, true);
      const okAck = await h.cometdPublish(cometd, `${root}/ok`, 'fine');
      assert.equal(okAck.successful, true);
      await ok.inbox.waitFor((m) => m.data === 'fine', 5000, 'a normal round trip after the rejected publishes');
      assertConnectedStatus(cometd);
      assert.equal(cometd.getClientId(), reply.clientId, 'the session must be unchanged (no re-handshake)');
      assert.equal(cometd.compat.outgoing.count((m) => m.channel === '/meta/handshake'), 1, 'no re-handshake');
      assert.equal(h.cometdOwnSockets(cometd).length, socketsBefore, 'no new WebSocket may have been opened');
      assertTransport(cometd, tr);
    });

    it('disconnects; the connection is then closed and the session gone', { timeout: 20_000 }, async (t) => {
      const { cometd, reply } = await connected(t, tr);
      const root = `/${h.uniqueName('cd')}`;
      await h.cometdSubscribe(cometd, `${root}/x`);
      await h.sleep(300); // let the client park its /meta/connect
      const started = Date.now();
      const bye = await h.cometdDisconnect(cometd, 5000);
      const took = Date.now() - started;
      assert.equal(bye.successful, true, `disconnect must succeed: ${h.short(bye)}`);
      assert.ok(took < 1500, `the disconnect reply should come at once, not after the held connect (took ${took} ms)`);
      assert.equal(cometd.getStatus(), 'disconnected');
      if (tr.websocket) {
        await h.waitUntil(() => h.cometdOwnSockets(cometd).every((ws) => ws.readyState === 3), 3000,
          () => `the WebSocket to close (readyStates ${h.cometdOwnSockets(cometd).map((ws) => ws.readyState)})`);
      } else {
        const inFlight = () => h.cometdOwnRequests(cometd).filter((r) => !r.done).length;
        await h.waitUntil(() => inFlight() === 0, 3000,
          () => `no HTTP request in flight (the held /meta/connect released); ${inFlight()} left`);
      }
      // The old clientId is now unknown to the server.
      const res = await h.rawPost(server.url,
        [{ channel: '/meta/connect', clientId: reply.clientId, connectionType: 'long-polling', id: '99' }]);
      const connectReply = (res.json || []).find((m) => m.channel === '/meta/connect');
      assert.ok(connectReply, `a /meta/connect reply is expected: ${res.status} ${res.body}`);
      assert.equal(connectReply.successful, false, `a connect with the disconnected clientId must fail: ${res.body}`);
      assert.equal(connectReply.advice && connectReply.advice.reconnect, 'handshake',
        `and advise a re-handshake: ${res.body}`);
      assertCleanLog(cometd);
    });
  });
}

describe('CometD connect loop with --timeout 2', { concurrency: 2 }, () => {
  let srv2;
  before(async () => { srv2 = await h.startServer({ timeout: 2 }); }, { timeout: 15_000 });
  after(async () => { if (srv2) await srv2.stop(); });

  for (const tr of h.TRANSPORTS) {
    it(`stays healthy for 2 held cycles (${tr.name})`, { timeout: 20_000 }, async (t) => {
      const cometd = h.cometdClient(srv2.url, { websocket: tr.websocket }, t);
      const connects = new h.Inbox('/meta/connect replies');
      cometd.addListener('/meta/connect', (m) => connects.push({ at: Date.now(), m }));
      const reply = await h.cometdHandshake(cometd);
      assert.equal(reply.successful, true, `handshake must succeed: ${h.short(reply)}`);
      assertTransport(cometd, tr);
      // First connect (advice.timeout 0) returns at once, then two held cycles of ~2 s.
      await connects.waitCount(() => true, 3, 9000, 'three /meta/connect replies');
      for (const { m } of connects.items) {
        assert.equal(m.successful, true, `every /meta/connect reply must be successful: ${h.short(m)}`);
      }
      const gaps = connects.items.slice(1).map((c, i) => c.at - connects.items[i].at);
      for (const gap of gaps) {
        assert.ok(gap >= 1500 && gap <= 3000, `held connects should return after ~2000 ms (timeout), got gaps ${gaps} ms`);
      }
      // Every connect reply echoed its request id.
      const sentIds = cometd.compat.outgoing.items.filter((m) => m.channel === '/meta/connect').map((m) => m.id);
      const replyIds = cometd.compat.incoming.items.filter((m) => m.channel === '/meta/connect').map((m) => m.id);
      assert.deepEqual(replyIds, sentIds.slice(0, replyIds.length), 'connect replies must echo the request ids in order');
      const advice = cometd.compat.incoming.items.filter((m) => m.channel === '/meta/connect' && m.advice).map((m) => m.advice);
      assert.ok(advice.length > 0, 'connect replies should carry advice');
      for (const a of advice) {
        assert.notEqual(a.reconnect, 'handshake', `a successful connect must not advise a handshake: ${h.short(a)}`);
      }
      assertConnectedStatus(cometd);
      assertTransport(cometd, tr);
      assertCleanLog(cometd);
    });
  }
});
