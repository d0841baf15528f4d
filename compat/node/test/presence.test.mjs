// The presence extension (bayou --presence) with the real clients: faye
// clients watch a room's companion channel over WebSocket and long-polling
// (members first, then joins and leaves), CometD asks /service/presence
// with remoteCall, clients cannot publish fake presence, and on a cluster
// of three nodes the members of every node are seen, a killed node's
// members leave, and GET /presence answers on any node.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../harness.mjs';
import { startRedis } from '../redis.mjs';

const skip = h.isBayou ? false : 'Bayou-only: the presence extension';

/** A faye client, connected, with the presence events of room in an inbox. */
async function watcher(url, room, t, websocket = true) {
  const c = h.fayeClient(url, { websocket }, t);
  await h.fayeConnect(c);
  const { inbox } = await h.fayeSubscribe(c, `/presence${room}`);
  return { client: c, inbox };
}

const id = (c) => c._dispatcher.clientId;
const isEvent = (action, clientId) => (m) => m.data.action === action && m.data.member?.clientId === clientId;

describe('presence on one node', { skip, timeout: 60_000 }, () => {
  let server;
  before(async () => { server = await h.startServer({ args: ['--presence', '/chat/*'] }); });
  after(async () => { await server?.stop(); });

  for (const transport of h.TRANSPORTS) {
    it(`faye over ${transport.name}: members, then join and leave`, async (t) => {
      const room = `/chat/${h.uniqueName(transport.name)}`;
      const early = h.fayeClient(server.url, { websocket: transport.websocket }, t);
      await h.fayeConnect(early);
      await h.fayeSubscribe(early, room);

      const w = await watcher(server.url, room, t, transport.websocket);
      // The members event lists the early client, unless its join, still
      // on its way when the watcher subscribed, came first (clients key
      // members by clientId, so either way they know it).
      const members = await w.inbox.waitFor((m) => m.data.action === 'members', 5000, 'the members event');
      assert.equal(members.data.channel, room);
      const listed = members.data.members.map((m) => m.clientId);
      const joinedBefore = w.inbox.items.indexOf(w.inbox.find(isEvent('join', id(early)))) >= 0;
      assert.ok(listed.includes(id(early)) || joinedBefore, `early client in ${h.short(members)} or joined before it`);
      assert.ok(listed.every((c) => c === id(early)), `only the early client: ${h.short(members)}`);

      const late = h.fayeClient(server.url, { websocket: transport.websocket }, t);
      await h.fayeConnect(late);
      await h.fayeSubscribe(late, room);
      await w.inbox.waitFor(isEvent('join', id(late)), 5000, 'the join of the late client');
      const lateId = id(late);
      await h.destroyFayeClient(late); // a disconnect: its subscriptions end
      await w.inbox.waitFor(isEvent('leave', lateId), 5000, 'the leave of the late client');
      await h.destroyFayeClient(early);
      await w.inbox.waitFor((m) => m.data.action === 'leave' && m.data.member.clientId !== lateId, 5000, 'the leave of the early client');
    });
  }

  it('CometD asks /service/presence with remoteCall', async (t) => {
    const room = `/chat/${h.uniqueName('cometd')}`;
    const f = h.fayeClient(server.url, {}, t);
    await h.fayeConnect(f);
    await h.fayeSubscribe(f, room);
    const cm = h.cometdClient(server.url, { websocket: true }, t);
    assert.equal((await h.cometdHandshake(cm)).successful, true);
    const call = (channel) => {
      const d = h.deferred();
      cm.remoteCall('presence', { channel }, 5000, (reply) => d.resolve(reply));
      return h.withTimeout(d.promise, 6000, 'the remote call');
    };
    const reply = await h.waitUntil(async () => {
      const r = await call(room);
      return r.successful && r.data.members.length === 1 ? r : null;
    }, 5000, 'a member in the answer');
    assert.deepEqual(reply.data, { channel: room, members: [{ clientId: id(f) }] });
    const bad = await call('/not/tracked');
    assert.equal(bad.successful, false, h.short(bad));
  });

  it('a client cannot publish presence events', async (t) => {
    const f = h.fayeClient(server.url, {}, t);
    await h.fayeConnect(f);
    await assert.rejects(h.fayePublish(f, '/presence/chat/x', { action: 'join', member: { user: 'admin' } }),
      (e) => e.code === 403, 'faye errback with code 403');
  });
});

describe('presence on a cluster of 3 nodes', { skip, timeout: 90_000 }, () => {
  let redis;
  const nodes = [];
  let apiPort;

  before(async () => {
    redis = await startRedis();
    const ns = h.uniqueName('presence');
    apiPort = await h.freePort();
    for (let i = 0; i < 3; i++) {
      const api = i === 2 ? ['--api-addr', `127.0.0.1:${apiPort}`] : [];
      nodes.push(await h.startServer({ args: ['--presence', '/chat/*', '--redis', redis.url, '--redis-namespace', ns, ...api] }));
    }
  });
  after(async () => {
    for (const n of nodes) await n.stop();
    redis?.stop();
  });

  it('members of every node; a killed node\'s members leave; GET /presence on any node', async (t) => {
    const room = '/chat/cluster';
    const w = await watcher(nodes[0].url, room, t);
    await w.inbox.waitFor((m) => m.data.action === 'members', 5000, 'the members event');
    const members = [];
    for (let i = 0; i < 3; i++) {
      const c = h.fayeClient(nodes[i].url, { websocket: i !== 1 }, t);
      await h.fayeConnect(c);
      await h.fayeSubscribe(c, room);
      members.push(id(c));
      await w.inbox.waitFor(isEvent('join', id(c)), 8000, `the join of the client on node ${i}`);
    }
    const listed = async () => {
      const res = await fetch(`http://127.0.0.1:${apiPort}/presence?channel=${encodeURIComponent(room)}`);
      assert.equal(res.status, 200);
      return (await res.json()).members.map((m) => m.clientId).sort();
    };
    assert.deepEqual(await listed(), [...members].sort());

    const killedAt = Date.now();
    await nodes[1].kill();
    await w.inbox.waitFor(isEvent('leave', members[1]), 20_000, 'the leave of the killed node\'s member');
    const took = Date.now() - killedAt;
    t.diagnostic(`a killed node's member left after ${took} ms (heartbeat TTL 10 s)`);
    assert.deepEqual(await listed(), [members[0], members[2]].sort());
    await h.sleep(500); // a second leave would come with the same sweep
    assert.equal(w.inbox.count(isEvent('leave', members[1])), 1, 'one leave');
  });
});
