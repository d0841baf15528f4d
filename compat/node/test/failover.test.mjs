// A node dies (kill -9) under a faye client: the client, behind a load
// balancer that sends new connections to the first node that accepts them,
// lands on another node, gets 401 there (its session died with its node),
// handshakes again, and the recovery extension that Bayou serves
// ({mount}/extensions/recovery.js) has the new session replay, from the
// channel's Redis stream, everything published since the last message it
// received. The application sees every message exactly once, in order.
// Bayou-only: a cluster of bayou nodes on Redis, with history.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as h from '../harness.mjs';
import { startRedis } from '../redis.mjs';

const skip = h.isBayou ? false : 'Bayou-only: a cluster of bayou nodes on Redis, with history';
const N = 600; // messages per case

/**
 * A TCP load balancer: each new connection goes to the first of ports that
 * accepts it. Resolves {url, close()}.
 */
async function failoverProxy(ports) {
  const open = new Set();
  const server = net.createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.pause();
    const attempt = (i) => {
      if (i >= ports.length) { client.destroy(); return; }
      const up = net.connect(ports[i], '127.0.0.1');
      up.once('error', () => attempt(i + 1));
      up.once('connect', () => {
        up.removeAllListeners('error');
        open.add(up);
        up.once('close', () => { open.delete(up); client.destroy(); });
        client.once('close', () => up.destroy());
        up.on('error', () => client.destroy());
        client.on('error', () => up.destroy());
        client.pipe(up);
        up.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/bayeux`,
    close() { for (const s of open) s.destroy(); server.close(); },
  };
}

/** Fetches {mount}/extensions/recovery.js and evaluates it as CommonJS. */
async function loadRecovery(mountURL) {
  const res = await h.withTimeout(fetch(`${mountURL}/extensions/recovery.js`), 5000, 'GET extensions/recovery.js');
  assert.equal(res.status, 200);
  const module = { exports: {} };
  new Function('module', 'exports', await res.text())(module, module.exports); // eslint-disable-line no-new-func
  return module.exports;
}

describe('a node killed under a faye client with the recovery extension', { skip, timeout: 120_000 }, () => {
  let redis;
  const nodes = [];
  let BayouRecovery;

  before(async () => {
    redis = await startRedis();
    const ns = h.uniqueName('failover');
    // Nodes 0-2 serve the subscribers (and die in turn); node 3 the publisher.
    for (let i = 0; i < 4; i++) {
      nodes.push(await h.startServer({
        timeout: 3,
        args: ['--redis', redis.url, '--redis-namespace', ns, '--history', '/failover/**=5000:10m'],
      }));
    }
    BayouRecovery = await loadRecovery(nodes[3].url);
  });

  after(async () => {
    for (const n of nodes) await n.stop();
    if (redis) redis.stop();
  });

  for (const [i, tr] of h.TRANSPORTS.entries()) {
    it(`over ${tr.name}: every message once, in order, across the death of the client's node`, async (t) => {
      // Node i is the first live node behind the balancer: the client's
      // session lives there until it is killed.
      const lb = await failoverProxy(nodes.slice(i, 3).map((n) => n.port));
      t.after(() => lb.close());
      const channel = `/failover/${tr.name}`;
      const sub = h.fayeClient(lb.url, { websocket: tr.websocket, retry: 0.5 }, t);
      const rec = new BayouRecovery();
      sub.addExtension(rec);
      const got = [];
      await h.withTimeout(sub.subscribe(channel, (data) => got.push(data.n)), 8000, `subscribe ${channel}`);

      const pub = h.fayeClient(nodes[3].url, { websocket: true }, t);
      await h.fayeConnect(pub);
      let killed = false;
      const started = Date.now();
      for (let n = 1; n <= N; n++) {
        await h.fayePublish(pub, channel, { n });
        if (!killed && got.length >= N / 4) {
          killed = true;
          await nodes[i].kill();
        }
        await h.sleep(5);
      }
      assert.ok(killed, `the node was killed (received ${got.length} of ${N} before the end)`);
      await h.waitUntil(() => got.length >= N, 30_000, () => `all ${N} messages (got ${got.length})`);
      // A last message behind any late copy: once it is in, nothing else comes.
      await h.fayePublish(pub, channel, { n: N + 1 });
      await h.waitUntil(() => got.includes(N + 1), 10_000, 'the last message');
      const want = Array.from({ length: N + 1 }, (_, k) => k + 1);
      assert.deepEqual(got, want, 'every message exactly once, in order');
      t.diagnostic(`${tr.name}: ${N} messages in ${Date.now() - started} ms across the kill; ` +
        `copies dropped by the extension: ${JSON.stringify(rec.stats)}`);
    });
  }
});
