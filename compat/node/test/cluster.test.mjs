// The real faye and CometD Node clients against a cluster of three bayou
// processes sharing a Redis of the test's own (--redis). Clients connect to
// different nodes and exchange messages; and a faye long-polling client
// talks to the cluster through a round-robin proxy, as behind a load
// balancer without sticky sessions, so that consecutive requests of one
// session land on different nodes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as h from '../harness.mjs';
import { startRedis } from '../redis.mjs';

const skip = h.isBayou ? false : 'Bayou-only: a cluster of bayou nodes on Redis';

/** An HTTP proxy that sends each request to the next target in turn. */
async function roundRobinProxy(targets) {
  let next = 0;
  const hits = targets.map(() => 0);
  const server = http.createServer((req, res) => {
    const i = next++ % targets.length;
    hits[i]++;
    const up = http.request({ host: '127.0.0.1', port: targets[i], method: req.method, path: req.url, headers: req.headers },
      (upRes) => { res.writeHead(upRes.statusCode, upRes.headers); upRes.pipe(res); });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${server.address().port}/bayeux`, hits, close: () => server.close() };
}

describe('a cluster of 3 bayou nodes on Redis', { skip, timeout: 90_000 }, () => {
  let redis;
  const nodes = [];
  let proxy;

  before(async () => {
    redis = await startRedis();
    const ns = h.uniqueName('cluster');
    for (let i = 0; i < 3; i++) {
      nodes.push(await h.startServer({ timeout: 3, args: ['--redis', `redis://127.0.0.1:${redis.port}/0`, '--redis-namespace', ns] }));
    }
    proxy = await roundRobinProxy(nodes.map((n) => n.port));
  });

  after(async () => {
    if (proxy) proxy.close();
    for (const n of nodes) await n.stop();
    if (redis) redis.stop();
  });

  it('faye and CometD clients on different nodes exchange messages, once each', async (t) => {
    const fa = h.fayeClient(nodes[0].url, { websocket: true }, t);
    await h.fayeConnect(fa);
    const fb = h.fayeClient(nodes[1].url, { websocket: false }, t);
    await h.fayeConnect(fb);
    const cm = h.cometdClient(nodes[2].url, { websocket: true }, t);
    const hs = await h.cometdHandshake(cm);
    assert.equal(hs.successful, true, `CometD handshake on node 2: ${h.short(hs)}`);

    const subA = await h.fayeSubscribe(fa, '/cluster/**');
    const subB = await h.fayeSubscribe(fb, '/cluster/x');
    const subC = await h.cometdSubscribe(cm, '/cluster/*');
    assert.equal(subC.reply.successful, true);

    await h.fayePublish(fb, '/cluster/x', { from: 'faye on node 1' });
    const ack = await h.cometdPublish(cm, '/cluster/y', { from: 'CometD on node 2' });
    assert.equal(ack.successful, true);

    await subA.inbox.waitCount(() => true, 2, 8000, 'faye (WebSocket, node 0) to receive both messages');
    await subB.inbox.waitCount(() => true, 1, 8000, 'faye (long-polling, node 1) to receive /cluster/x');
    await subC.inbox.waitCount(() => true, 2, 8000, 'CometD (WebSocket, node 2) to receive both messages');
    await h.sleep(300); // duplicates would arrive by now
    assert.equal(h.deliveries(fa, '/cluster').length, 2, `node 0 faye got ${h.short(h.deliveries(fa, '/cluster'))}`);
    assert.equal(h.deliveries(fb, '/cluster').length, 1, `node 1 faye got ${h.short(h.deliveries(fb, '/cluster'))}`);
    assert.deepEqual(subB.inbox.items.map((m) => m.data.from), ['faye on node 1']);
    assert.deepEqual(new Set(subC.inbox.items.map((m) => m.channel)), new Set(['/cluster/x', '/cluster/y']));
    assert.deepEqual(h.cometdProblems(cm), [], `CometD client log:\n${h.describeCometdLog(cm)}`);
  });

  it('a faye long-polling client behind a round-robin proxy (no sticky sessions) gets every message once, in order', async (t) => {
    const before = [...proxy.hits];
    const sub = h.fayeClient(proxy.url, { websocket: false }, t);
    await h.fayeConnect(sub);
    const { inbox } = await h.fayeSubscribe(sub, '/rr/feed');
    const pub = h.fayeClient(nodes[2].url, { websocket: true }, t);
    await h.fayeConnect(pub);
    const N = 60;
    for (let i = 0; i < N; i++) {
      await h.fayePublish(pub, '/rr/feed', { seq: i });
      if (i % 10 === 9) await h.sleep(100); // let connects cycle through the nodes
    }
    await inbox.waitCount(() => true, N, 15_000, `all ${N} messages through the round-robin proxy`);
    await h.sleep(300);
    assert.deepEqual(inbox.items.map((m) => m.data.seq), [...Array(N).keys()], 'messages lost, duplicated or out of order');
    const spread = proxy.hits.map((n, i) => n - before[i]);
    assert.ok(spread.every((n) => n >= 3), `the proxy should have sent requests to every node: ${spread}`);
    t.diagnostic(`requests per node through the proxy: ${spread.join(', ')}`);
  });
});
