// Draining: on SIGTERM Bayou answers the connects it holds with a failure
// and advice to handshake again, so that faye and CometD clients start a new
// session, through the load balancer on another node. Here the "other node"
// is the server restarted on the same port: the clients come back by
// themselves. CometD honours "handshake" only on a failed reply, and must
// log no "Unrecognized advice".
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../harness.mjs';

const T = 10; // long enough for the connect to be held when the server stops

/** Waits until the server logged n /meta/connect messages of clientId (the last one is then held). */
function connectsReceived(server, clientId, n) {
  const re = new RegExp(`msg=message channel=/meta/connect clientId=${clientId}`, 'g');
  return h.waitUntil(() => (server.logs().match(re) || []).length >= n, 5000,
    () => `${n} connects of ${clientId} received by the server`);
}

const drainReply = (m) => m.channel === '/meta/connect' && m.successful === false &&
  m.error === '503::Server shutting down' && m.advice && m.advice.reconnect === 'handshake';

describe('drain', { skip: h.bayouOnly('faye answers held connects successfully at shutdown') }, () => {
  for (const tr of h.TRANSPORTS) {
    it(`a faye client on ${tr.name} is told to handshake again, and does`, { timeout: 30_000 }, async (t) => {
      const server = await h.startServer({ timeout: T, args: ['--log-level', 'debug'] });
      t.after(() => server.stop());
      const client = h.fayeClient(server.url, { websocket: tr.websocket, retry: 0.2 }, t);
      await h.fayeConnect(client);
      const first = client._dispatcher.clientId;
      await connectsReceived(server, first, 1);
      await server.stop({ graceMs: 5000 });
      await client.compat.incoming.waitFor(drainReply, 5000, 'the held connect answered with the drain advice');
      await server.restart();
      await h.waitUntil(() => client._dispatcher.clientId && client._dispatcher.clientId !== first &&
        client.compat.incoming.find((m) => m.channel === '/meta/handshake' && m.successful && m.clientId !== first),
      10_000, 'a new session on the restarted server');
      const ch = `/${h.uniqueName('drain')}`;
      const sub = await h.fayeSubscribe(client, ch);
      await h.fayePublish(client, ch, { back: true });
      await sub.inbox.waitFor((m) => m.data.back, 5000, 'a message on the new session');
    });

    it(`a CometD client on ${tr.name} is told to handshake again, and does`, { timeout: 30_000 }, async (t) => {
      const server = await h.startServer({ timeout: T, args: ['--log-level', 'debug'] });
      t.after(() => server.stop());
      const cometd = h.cometdClient(server.url, { websocket: tr.websocket }, t);
      const reply = await h.cometdHandshake(cometd);
      assert.equal(reply.successful, true, h.short(reply));
      await connectsReceived(server, reply.clientId, 2); // the first one, with advice.timeout 0, is not held
      await server.stop({ graceMs: 5000 });
      await cometd.compat.incoming.waitFor(drainReply, 5000, 'the held connect answered with the drain advice');
      await server.restart();
      await h.waitUntil(() => h.cometdClientIds(cometd).size >= 2 && ['connected', 'connecting'].includes(cometd.getStatus()),
        15_000, () => `a new session on the restarted server\n${h.describeCometdLog(cometd)}`);
      const bad = cometd.compat.log.filter((e) => h.COMETD_BAD_LOG.test(e.text));
      assert.deepEqual(bad.map((e) => e.text.slice(0, 200)), [], 'CometD must not dislike the drain reply');
    });
  }
});
