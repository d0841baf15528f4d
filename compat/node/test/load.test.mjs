// Fan-out under load: 50 faye subscribers (25 WebSocket, 25 long-polling)
// plus 4 CometD subscribers (2 WebSocket, 2 long-polling), all on /load/**;
// 2 publishers each publish 100 messages to /load/p<k>, one of them with a
// 256 KiB payload. Every subscriber must get all 200 exactly once, in order
// per publisher.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as h from '../harness.mjs';

const FAYE_PER_TRANSPORT = 25;
const COMETD_PER_TRANSPORT = 2;
const PUBLISHERS = 2;
const PER_PUBLISHER = 100;
const BIG_SEQ = 50; // publisher 0's message with this seq carries 256 KiB
const TOTAL = PUBLISHERS * PER_PUBLISHER;

let server;
before(async () => { server = await h.startServer({ timeout: 5 }); }, { timeout: 15_000 });
after(async () => { if (server) await server.stop(); });

it(`delivers ${TOTAL} messages to ${2 * (FAYE_PER_TRANSPORT + COMETD_PER_TRANSPORT)} subscribers exactly once, in order`,
  { timeout: 60_000 }, async (t) => {
    const root = `/${h.uniqueName('load')}`; // plays the role of "/load"
    const big = 'L'.repeat(256 * 1024 - 8) + 'é😀end';
    const subscribers = [];

    // faye subscribers: subscribe in parallel, each waits for its own ack and transport.
    const fayeSubs = [];
    for (const tr of h.TRANSPORTS) {
      for (let i = 0; i < FAYE_PER_TRANSPORT; i++) {
        fayeSubs.push((async () => {
          const client = h.fayeClient(server.url, { websocket: tr.websocket }, t);
          const { inbox } = await h.fayeSubscribe(client, `${root}/**`, 15_000);
          await h.waitFayeTransport(client, tr.name, 15_000);
          subscribers.push({ name: `faye/${tr.name}#${i}`, inbox });
        })());
      }
    }
    const cometdSubs = [];
    for (const tr of h.TRANSPORTS) {
      for (let i = 0; i < COMETD_PER_TRANSPORT; i++) {
        cometdSubs.push((async () => {
          const cometd = h.cometdClient(server.url, { websocket: tr.websocket, maxNetworkDelay: 10_000 }, t);
          const hs = await h.cometdHandshake(cometd, 15_000);
          assert.equal(hs.successful, true, `CometD handshake: ${h.short(hs)}`);
          assert.equal(h.cometdTransport(cometd), tr.name);
          const { inbox, reply } = await h.cometdSubscribe(cometd, `${root}/**`, 15_000);
          assert.equal(reply.successful, true, `CometD subscribe: ${h.short(reply)}`);
          subscribers.push({ name: `cometd/${tr.name}#${i}`, inbox });
        })());
      }
    }
    const setupStart = Date.now();
    await Promise.all([...fayeSubs, ...cometdSubs]);
    t.diagnostic(`${subscribers.length} subscribers ready in ${Date.now() - setupStart} ms`);

    // Publishers: one faye client per transport, each awaiting every publish ack.
    const publishStart = Date.now();
    await Promise.all(Array.from({ length: PUBLISHERS }, async (_, k) => {
      const tr = h.TRANSPORTS[k % h.TRANSPORTS.length];
      const pub = h.fayeClient(server.url, { websocket: tr.websocket }, t);
      await h.fayeConnect(pub, 15_000);
      for (let seq = 0; seq < PER_PUBLISHER; seq++) {
        const data = { pub: k, seq };
        if (k === 0 && seq === BIG_SEQ) data.big = big;
        await h.fayePublish(pub, `${root}/p${k}`, data, 15_000);
      }
    }));
    t.diagnostic(`${TOTAL} publishes acked in ${Date.now() - publishStart} ms`);

    await h.waitUntil(() => subscribers.every((s) => s.inbox.items.length >= TOTAL), 30_000, () => {
      const behind = subscribers.filter((s) => s.inbox.items.length < TOTAL);
      return `all subscribers to receive ${TOTAL} messages; ${behind.length} behind, e.g. ` +
        behind.slice(0, 5).map((s) => `${s.name}: ${s.inbox.items.length}`).join(', ');
    }, 100);
    t.diagnostic(`all delivered ${Date.now() - publishStart} ms after the first publish`);
    await h.sleep(500); // let duplicates, if any, arrive

    for (const s of subscribers) {
      const items = s.inbox.items;
      assert.equal(items.length, TOTAL, `${s.name} must receive exactly ${TOTAL} messages, got ${items.length}`);
      for (let k = 0; k < PUBLISHERS; k++) {
        const seqs = items.filter((m) => m.data.pub === k).map((m) => m.data.seq);
        const expected = Array.from({ length: PER_PUBLISHER }, (_, i) => i);
        assert.deepEqual(seqs, expected, `${s.name}: publisher ${k}'s messages must arrive once each, in order`);
        assert.ok(items.filter((m) => m.data.pub === k).every((m) => m.channel === `${root}/p${k}`),
          `${s.name}: publisher ${k}'s messages must carry channel ${root}/p${k}`);
      }
      const bigMsg = items.find((m) => m.data.pub === 0 && m.data.seq === BIG_SEQ);
      assert.ok(bigMsg.data.big === big, `${s.name}: the 256 KiB payload must arrive intact`);
    }
  });
