// Hostile input against a live server while real clients use it (Bayou-only:
// the npm faye server is itself vulnerable to several of these requests).
//
// One server, three subscribers on /x:
//   (a) a raw `ws` WebSocket speaking Bayeux by hand (handshake, connect with
//       connectionType "websocket", subscribe, a new /meta/connect each time
//       the held one is answered). ws validates every text frame and closes
//       with 1007 on invalid UTF-8, so its socket surviving proves no invalid
//       byte reached it;
//   (b) a faye client over WebSocket;
//   (c) a faye client on long-polling.
// A faye publisher sends SEQ_COUNT numbered messages to /x while anonymous
// HTTP requests (and two raw WebSockets) attack the same server: invalid
// UTF-8 in data/ext/channel, 1 MiB of "[", nesting past 64, bodies over
// 1 MiB, batches of 101 messages and 1 MiB of {}, 1 MiB channel names in
// publishes and subscribes, 65-segment channels, 50 handshakes in one request.
// Every attack must get its documented answer (never a 5xx); every subscriber
// must get every numbered message exactly once and in order, plus each
// invalid-UTF-8 publish once with U+FFFD in place of each run of bad bytes,
// and nothing else; no subscriber may lose its socket or its clientId.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';
import * as h from '../harness.mjs';

const T = 2; // server --timeout (seconds): held connects are answered during the run
const CH = '/x';
const SEQ_COUNT = 300;
const ROUNDS = 5; // each round sends every kind of HTTP attack once
const MAX_IN_FLIGHT = 4; // concurrent attack requests
const PUBLISH_GAP_MS = 8; // between numbered publishes: the run lasts longer than T
const RUN_BUDGET_MS = 25_000; // publishes and attacks (about 4 s when all is well)
const MiB = 1 << 20;
const FFFD = '\uFFFD';

let server;

/** Bytes from strings (UTF-8) and byte arrays, so that bodies can hold invalid UTF-8. */
const bytes = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

const wsUrl = (url) => url.replace(/^http/, 'ws');

/**
 * Anonymous POST of a raw body. Resolves {status, body, json} or {error}
 * (never rejects), within ms.
 */
async function attackPost(url, body, ms = 15_000) {
  const r = await h.settle(new Promise((resolve) => {
    let done = false;
    const finish = (v) => { if (!done) { done = true; resolve(v); } };
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        finish({ status: res.statusCode, body: text, json });
      });
      res.on('error', (e) => finish({ error: `response: ${e.code || e.message}` }));
    });
    req.on('error', (e) => finish({ error: `request: ${e.code || e.message}` }));
    req.end(body);
  }), ms, `answer to a ${body.length}-byte attack`);
  return r.ok ? r.value : { error: r.error.message };
}

// ---------------------------------------------------------------------------
// The attacks. Each builds its request and checks the answer, returning a
// problem description or "" (the attack got its documented answer).

/** Invalid UTF-8 in a publish's data and ext; expected is what subscribers must get. */
function utf8Publish(marker, asObject) {
  // Runs of invalid bytes: FF FE; a lone C3 (lead byte without continuation);
  // FF right before a valid "é"; F0 9F 98 (a 4-byte sequence cut short).
  const text = ['atk-', marker, '-', [0xff, 0xfe], '-', [0xc3], '-', [0xff], 'é-end-', [0xf0, 0x9f, 0x98], '-x'];
  const fixed = `atk-${marker}-${FFFD}-${FFFD}-${FFFD}é-end-${FFFD}-x`;
  const data = asObject
    ? ['{"atk":"', marker, '","text":"', ...text, '","k', [0xfe], '":1}']
    : ['"', ...text, '"'];
  const body = bytes('{"channel":"/x","data":', ...data, ',"ext":{"atk":"', marker, '","bad":"', [0xc3], '"}}');
  return {
    kind: asObject ? 'utf8-data-object' : 'utf8-data-string',
    body,
    expected: {
      marker,
      data: asObject ? { atk: marker, text: fixed, [`k${FFFD}`]: 1 } : fixed,
      ext: { atk: marker, bad: FFFD },
    },
    check: (r) => (r.status === 200 && Array.isArray(r.json) && r.json.length === 1 && r.json[0].channel === CH &&
      r.json[0].successful === true ? '' : 'want 200 and a successful publish reply'),
  };
}

const replyError = (r) => (Array.isArray(r.json) && r.json.length >= 1 ? r.json[0] : null);

/** A 200 whose first reply is unsuccessful with an error matching re (and is short). */
function errorReply(re, maxLen = 2048) {
  return (r) => {
    const rep = replyError(r);
    if (r.status !== 200 || !rep) return `want 200 and a reply array, error ${re}`;
    if (rep.successful !== false || !re.test(String(rep.error))) return `want an unsuccessful reply with error ${re}`;
    if (r.body.length > maxLen) return `reply of ${r.body.length} bytes: the channel must be clipped (max ${maxLen})`;
    return '';
  };
}

function statusWith(status, re) {
  return (r) => (r.status === status && re.test(r.body) ? '' : `want HTTP ${status} with a body matching ${re}`);
}

/** A /a/a/a… channel so that prefix + channel + suffix is `total` bytes. */
function hugeChannelBody(prefix, suffix, total = MiB) {
  const n = Math.floor((total - prefix.length - suffix.length) / 2);
  return Buffer.from(prefix + '/a'.repeat(n) + suffix, 'utf8');
}

const BATCH101 = Buffer.from('[' + Array.from({ length: 101 }, () => '{"channel":"/x","data":{"atk":"batch101"}}').join(',') + ']');
const BATCH_1MIB = Buffer.from('[' + Array(Math.floor((MiB - 1) / 3)).fill('{}').join(',') + ']');
const DEEP_1MIB = Buffer.alloc(MiB, '[');
const DEEP_PUBLISH = Buffer.from('{"channel":"/x","data":' + '['.repeat(65) + '"atk-deep"' + ']'.repeat(65) + '}');
const TOO_BIG = Buffer.from('{"channel":"/x","data":"atk-toobig-' + 'A'.repeat(MiB + 64 * 1024) + '"}');
const LONG_PUBLISH = hugeChannelBody('{"channel":"', '","data":"atk-long"}');
const SEGMENTS_PUBLISH = Buffer.from('{"channel":"' + '/a'.repeat(65) + '","data":"atk-segments"}');
const HANDSHAKE_BATCH = Buffer.from('[' + Array(50).fill(
  '{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}').join(',') + ']');
assert.ok(BATCH_1MIB.length <= MiB && LONG_PUBLISH.length <= MiB && TOO_BIG.length > MiB);

const LONGER_THAN = /^405:\/a\/a\/a.*\.\.\.:Invalid channel - longer than 1024 bytes$/;

/** One round of HTTP attacks; `marker` numbers the invalid-UTF-8 publishes. */
function httpAttacks(round) {
  return [
    utf8Publish(`${round}s`, false),
    utf8Publish(`${round}o`, true),
    {
      kind: 'utf8-channel',
      body: bytes('{"channel":"/x', [0xff], '","data":"atk-badchannel"}'),
      check: (r) => {
        const rep = replyError(r);
        return r.status === 200 && rep && rep.successful === false && rep.error === `405:/x${FFFD}:Invalid channel`
          ? '' : `want 200 with error "405:/x${FFFD}:Invalid channel"`;
      },
    },
    { kind: 'deep-1MiB-of-[', body: DEEP_1MIB, check: statusWith(400, /nested more than 64 deep/) },
    { kind: 'deep-publish-65', body: DEEP_PUBLISH, check: statusWith(400, /nested more than 64 deep/) },
    { kind: 'too-big-1.06MiB', body: TOO_BIG, check: statusWith(413, /too large/i) },
    { kind: 'batch-101', body: BATCH101, check: statusWith(400, /more than 100 messages/) },
    { kind: 'batch-1MiB-of-{}', body: BATCH_1MIB, check: statusWith(400, /more than 100 messages/) },
    { kind: 'publish-1MiB-channel', body: LONG_PUBLISH, check: errorReply(LONGER_THAN) },
    { kind: 'publish-65-segments', body: SEGMENTS_PUBLISH, check: errorReply(/^405:.*:Invalid channel - more than 64 segments$/) },
    {
      kind: 'subscribe-1MiB-channel',
      // A session of its own (handshaken over HTTP, never connected), so that
      // the channel check is what refuses the subscribe.
      async prepare(url) {
        const hs = await attackPost(url, Buffer.from(
          '{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}'));
        const id = replyError(hs) && replyError(hs).clientId;
        if (!id) throw new Error(`attacker handshake failed: ${h.short(hs)}`);
        return hugeChannelBody(`{"channel":"/meta/subscribe","clientId":"${id}","subscription":"`, '"}');
      },
      check: errorReply(LONGER_THAN),
    },
    {
      kind: 'subscribe-1MiB-channel-anonymous',
      body: hugeChannelBody('{"channel":"/meta/subscribe","subscription":"', '"}'),
      // Without a clientId the missing parameter wins (faye's precedence); the
      // answer may echo the subscription but must not be larger than the request.
      check: (r) => errorReply(/^402:clientId:Missing required parameter$/, MiB + 512)(r),
    },
    {
      kind: 'handshake-batch-50',
      body: HANDSHAKE_BATCH,
      check: (r) => (r.status === 200 && Array.isArray(r.json) && r.json.length === 50 && r.json[0].successful === true &&
        r.json.slice(1).every((m) => m.successful === false) ? '' : 'want 200, one successful handshake and 49 refused'),
    },
  ];
}

/** A raw WebSocket that sends one frame and must be closed with `code`. */
async function wsAttack(url, kind, frame, code, reasonRe) {
  const ws = new WebSocket(wsUrl(url));
  const closed = h.deferred();
  ws.on('close', (c, reason) => closed.resolve({ code: c, reason: reason.toString() }));
  ws.on('error', () => { /* the close event follows */ });
  ws.on('open', () => ws.send(frame));
  const r = await h.settle(closed.promise, 10_000, `${kind}: the server to close the socket`);
  if (!r.ok) ws.terminate();
  const got = r.ok ? r.value : { error: r.error.message };
  const problem = r.ok && got.code === code && reasonRe.test(got.reason) ? '' : `want close ${code} with a reason matching ${reasonRe}`;
  return { kind, status: r.ok ? `close ${got.code}` : 'no close', got, problem };
}

// ---------------------------------------------------------------------------
// Subscriber (a): Bayeux by hand over a raw ws WebSocket.

class RawWsSubscriber {
  constructor(url, channel) {
    this.channel = channel;
    this.deliveries = new h.Inbox(`raw ws ${channel}`);
    this.clientIds = []; // one per successful handshake
    this.handshakesSent = 0;
    this.connectsSent = 0;
    this.connectReplies = 0;
    this.problems = []; // unsuccessful replies, advice to handshake/stop, unparsable frames
    this.closes = [];
    this.errors = [];
    this.others = [];
    this.binaryFrames = 0;
    this.stopping = false;
    this.nextId = 0;
    this.subscribed = h.deferred();
    this.ws = new WebSocket(wsUrl(url));
    this.ws.on('open', () => {
      this.handshakesSent++;
      this.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] });
    });
    this.ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    this.ws.on('close', (code, reason) => {
      this.closes.push({ code, reason: reason.toString() });
      this.subscribed.reject(new Error(`raw ws closed ${code} ${reason}`));
    });
    this.ws.on('error', (e) => this.errors.push(e.message));
  }

  get clientId() { return this.clientIds.at(-1); }

  send(...msgs) {
    for (const m of msgs) m.id = String(++this.nextId);
    this.ws.send(JSON.stringify(msgs));
  }

  connect(first = false) {
    this.connectsSent++;
    const m = { channel: '/meta/connect', clientId: this.clientId, connectionType: 'websocket' };
    if (first) m.advice = { timeout: 0 }; // like faye: the first connect returns at once
    this.send(m);
  }

  onFrame(data, isBinary) {
    if (isBinary) this.binaryFrames++;
    let msgs;
    try {
      msgs = [].concat(JSON.parse(data.toString('utf8')));
    } catch {
      this.problems.push(`unparsable frame: ${h.short(data.toString('utf8'))}`);
      return;
    }
    for (const m of msgs) {
      const advice = m.advice && m.advice.reconnect;
      if (advice === 'handshake' || advice === 'none') this.problems.push(`advice reconnect "${advice}": ${h.short(m)}`);
      switch (m.channel) {
        case '/meta/handshake':
          if (!m.successful) { this.problems.push(`handshake failed: ${h.short(m)}`); break; }
          this.clientIds.push(m.clientId);
          this.connect(true);
          this.send({ channel: '/meta/subscribe', clientId: this.clientId, subscription: this.channel });
          break;
        case '/meta/connect':
          this.connectReplies++;
          if (!m.successful) { this.problems.push(`connect failed: ${h.short(m)}`); break; }
          if (!this.stopping) this.connect(); // re-send, as a real client does
          break;
        case '/meta/subscribe':
          if (m.successful) this.subscribed.resolve(m);
          else this.subscribed.reject(new Error(`subscribe refused: ${h.short(m)}`));
          break;
        case '/meta/disconnect':
          break;
        default:
          if (m.channel === this.channel && m.data !== undefined) this.deliveries.push(m);
          else this.others.push(m);
      }
    }
  }

  async close() {
    this.stopping = true;
    if (this.ws.readyState === WebSocket.OPEN) {
      try { this.send({ channel: '/meta/disconnect', clientId: this.clientId }); } catch { /* ignore */ }
      this.ws.close(1000);
      const r = await h.settle(new Promise((res) => this.ws.once('close', res)), 2000, 'raw ws close');
      if (!r.ok) this.ws.terminate();
    } else if (this.ws.readyState !== WebSocket.CLOSED) {
      this.ws.terminate();
    }
  }
}

// ---------------------------------------------------------------------------

/** What a subscriber got, sorted: numbered messages, invalid-UTF-8 ones, anything else. */
function classify(items) {
  const seqs = [];
  const utf8 = [];
  const unexpected = [];
  for (const m of items) {
    const d = m.data;
    if (d && typeof d === 'object' && Number.isInteger(d.seq) && Object.keys(d).length === 1) seqs.push(d.seq);
    else if ((typeof d === 'string' && d.startsWith('atk-')) || (d && typeof d === 'object' && typeof d.atk === 'string')) {
      const marker = m.ext && m.ext.atk;
      utf8.push({ marker, data: d, ext: m.ext });
    } else unexpected.push(m);
  }
  return { seqs, utf8, unexpected };
}

describe('hostile HTTP and WebSocket input while clients use the server',
  { skip: h.bayouOnly('the npm faye server is itself vulnerable to these requests') }, () => {
    // --forward-ext: subscribers see the publishers' ext (repaired), as in faye.
    before(async () => { server = await h.startServer({ timeout: T, args: ['--forward-ext'] }); }, { timeout: 15_000 });
    after(async () => { if (server) await server.stop(); });

    it(`delivers ${SEQ_COUNT} messages once and in order, repairs invalid UTF-8, and keeps every session`,
      { timeout: 50_000 }, async (t) => {
        const started = Date.now();

        // (a) raw ws subscriber
        const raw = new RawWsSubscriber(server.url, CH);
        t.after(() => raw.close());
        await h.withTimeout(raw.subscribed.promise, 5000, 'the raw ws subscriber\'s subscribe reply');

        // (b) faye over WebSocket, (c) faye on long-polling
        const fayes = [];
        for (const tr of h.TRANSPORTS) {
          const client = h.fayeClient(server.url, { websocket: tr.websocket }, t);
          const { inbox } = await h.fayeSubscribe(client, CH);
          await h.waitFayeTransport(client, tr.name);
          const downs = [];
          client.bind('transport:down', () => downs.push(Date.now() - started));
          const socket = tr.websocket ? client._dispatcher._transport._socket : null;
          const socketCloses = [];
          if (socket) socket.on('close', (e) => socketCloses.push({ code: e.code, reason: e.reason }));
          fayes.push({ name: `faye/${tr.name}`, tr, client, inbox, clientId: client._dispatcher.clientId, downs, socket, socketCloses });
        }

        const pub = h.fayeClient(server.url, { websocket: true }, t);
        await h.fayeConnect(pub);
        const pubClientId = pub._dispatcher.clientId;

        // Attacks: ROUNDS rounds of every HTTP attack, plus two WebSocket attacks,
        // fired from the publish loop so that they interleave with the numbered
        // messages, at most MAX_IN_FLIGHT at a time.
        const attacks = [];
        for (let round = 0; round < ROUNDS; round++) attacks.push(...httpAttacks(round));
        const wsAttacks = [
          { kind: 'ws-frame-101-messages', frame: '[' + Array(101).fill('{}').join(',') + ']' },
          { kind: 'ws-frame-101-publishes', frame: '[' + Array(101).fill('{"channel":"/x","data":{"atk":"wsbatch"}}').join(',') + ']' },
        ].map(({ kind, frame }) => ({ kind, run: () => wsAttack(server.url, kind, frame, 1008, /more than 100 messages/) }));
        const expectedUtf8 = attacks.filter((a) => a.expected).map((a) => a.expected);
        const results = [];
        const inFlight = new Map(); // promise → kind
        const launch = (kind, fn) => {
          const p = fn()
            .then((r) => { results.push(r); }, (e) => { results.push({ kind, status: 'exception', problem: e.message }); })
            .finally(() => inFlight.delete(p));
          inFlight.set(p, kind);
        };
        const runHttp = (a) => async () => {
          const t0 = Date.now();
          let body = a.body;
          try {
            if (a.prepare) body = await a.prepare(server.url);
          } catch (e) {
            return { kind: a.kind, status: 'prepare failed', problem: e.message };
          }
          const r = await attackPost(server.url, body);
          const problem = r.error ? `no answer: ${r.error}`
            : (r.status >= 500 ? `server error ${r.status}` : a.check(r));
          return { kind: a.kind, status: r.status ?? r.error, ms: Date.now() - t0, problem,
            got: problem ? `${r.status} ${h.short(r.body ?? r.error, 400)}` : undefined };
        };
        const schedule = [...attacks.map((a) => ({ kind: a.kind, run: runHttp(a) })), ...wsAttacks];
        // Attack j starts with numbered message floor(j * SEQ_COUNT / schedule.length).
        const startAt = schedule.map((_, j) => Math.floor((j * SEQ_COUNT) / schedule.length));

        /** Attack outcomes so far, kind → statuses, for diagnostics and failure messages. */
        const summary = () => {
          const byKind = new Map();
          for (const r of results) {
            const k = byKind.get(r.kind) || new Map();
            k.set(r.status, (k.get(r.status) || 0) + 1);
            byKind.set(r.kind, k);
          }
          const lines = [...byKind].map(([kind, st]) => `${kind}: ${[...st].map(([s, n]) => `${n}× ${s}`).join(', ')}`);
          if (inFlight.size) lines.push(`unanswered: ${[...inFlight.values()].join(', ')}`);
          return lines;
        };

        // The run as a whole has a budget, so that a server that chokes makes
        // the case fail with what it was doing, well before the test timeout.
        const publishStart = Date.now();
        const deadline = publishStart + RUN_BUDGET_MS;
        const remaining = () => Math.max(1, deadline - Date.now());
        let next = 0;
        let seq = 0;
        try {
          for (; seq < SEQ_COUNT; seq++) {
            while (next < schedule.length && startAt[next] <= seq) {
              if (inFlight.size >= MAX_IN_FLIGHT) {
                await h.withTimeout(Promise.race(inFlight.keys()), remaining(), 'a free attack slot');
              }
              launch(schedule[next].kind, schedule[next].run);
              next++;
            }
            // Rejects unless the server acked the publish.
            await h.fayePublish(pub, CH, { seq }, Math.min(10_000, remaining()));
            await h.sleep(PUBLISH_GAP_MS);
          }
          await h.withTimeout(Promise.all([...inFlight.keys()]), remaining(), 'the last attacks to be answered');
        } catch (e) {
          throw new Error(`${e.message}; after ${Date.now() - publishStart} ms, ${seq}/${SEQ_COUNT} publishes acked, ` +
            `${results.length}/${schedule.length} attacks answered:\n  ${summary().join('\n  ')}`);
        }
        const publishMs = Date.now() - publishStart;
        for (const line of summary()) t.diagnostic(line);
        assert.equal(results.length, schedule.length, 'every attack was answered');
        const serverErrors = results.filter((r) => typeof r.status === 'number' && r.status >= 500);
        assert.deepEqual(serverErrors, [], 'no attack may get a 5xx');
        const wrong = results.filter((r) => r.problem);
        assert.deepEqual(wrong.map((r) => `${r.kind}: ${r.problem}; got ${r.got ?? h.short(r.got)}`), [],
          'every attack must get its documented answer');

        // Every subscriber gets every numbered message and every repaired publish.
        const subscribers = [
          { name: 'raw ws', items: () => raw.deliveries.items },
          ...fayes.map((f) => ({ name: f.name, items: () => h.deliveries(f.client, CH) })),
        ];
        const want = SEQ_COUNT + expectedUtf8.length;
        const socketClosed = () => raw.closes.length > 0 || fayes.some((f) => f.socketCloses.length > 0);
        // A closed socket fails the case below: no need to wait the whole time.
        await h.waitUntil(() => socketClosed() || subscribers.every((s) => s.items().length >= want), 10_000,
          () => `every subscriber to receive ${want} messages (` +
            subscribers.map((s) => `${s.name} has ${s.items().length}, last ${h.short(s.items().at(-1), 200)}`).join('; ') + ')');
        await h.sleep(500); // time for duplicates or stray messages to show up

        // The WebSockets never closed: ws (raw) closes with 1007 on a frame
        // that is not valid UTF-8, and so does faye's websocket-driver.
        assert.deepEqual({ closes: raw.closes, errors: raw.errors }, { closes: [], errors: [] },
          'the raw ws socket must never close nor see an error (ws: "Invalid UTF-8 sequence")');
        assert.equal(raw.ws.readyState, WebSocket.OPEN, 'the raw ws socket is still open');
        for (const f of fayes.filter((x) => x.socket)) {
          assert.deepEqual(f.socketCloses, [], `${f.name}: its WebSocket never closed`);
          assert.equal(f.client._dispatcher._transport._socket, f.socket, `${f.name} still uses its first WebSocket`);
          assert.equal(h.fayeTransport(f.client).open, true, `${f.name}: its WebSocket is open`);
        }

        const wantSeqs = Array.from({ length: SEQ_COUNT }, (_, i) => i);
        const wantUtf8 = [...expectedUtf8].sort((a, b) => a.marker.localeCompare(b.marker));
        for (const s of subscribers) {
          const got = classify(s.items());
          assert.deepEqual(got.unexpected.map((m) => h.short(m, 200)), [],
            `${s.name} must receive nothing but the numbered and the repaired messages`);
          assert.deepEqual(got.seqs, wantSeqs, `${s.name} must receive all ${SEQ_COUNT} numbered messages once, in order`);
          const utf8 = [...got.utf8].sort((a, b) => String(a.marker).localeCompare(String(b.marker)));
          assert.deepEqual(utf8, wantUtf8,
            `${s.name} must receive each invalid-UTF-8 publish once, with U+FFFD for each run of invalid bytes`);
        }
        // The faye subscriber callbacks agree with what came off the wire.
        for (const f of fayes) {
          assert.equal(classify(f.inbox.items).seqs.length, SEQ_COUNT, `${f.name}: subscription callback fired for every message`);
        }

        // (a) the raw client never had to handshake again, and its connect loop went on.
        assert.equal(raw.binaryFrames, 0, 'the server sends text frames only');
        assert.deepEqual(raw.problems, [], 'the raw ws client got no failed reply and no advice to handshake');
        assert.equal(raw.handshakesSent, 1, 'the raw ws client handshook once');
        assert.equal(raw.clientIds.length, 1, 'the raw ws client has one clientId');
        assert.ok(raw.connectReplies >= 2,
          `held connects must have been answered and re-sent during the run (${raw.connectReplies} connect replies in ${Date.now() - started} ms)`);
        assert.deepEqual(raw.others.map((m) => h.short(m)), [], 'the raw ws client got no other message');

        // (b), (c) and the publisher: same clientId, one handshake, no transport:down.
        for (const f of [...fayes, { name: 'faye publisher', client: pub, clientId: pubClientId, downs: [] }]) {
          assert.equal(f.client._dispatcher.clientId, f.clientId, `${f.name} kept its clientId`);
          const handshakes = f.client.compat.outgoing.count((m) => m.channel === '/meta/handshake');
          assert.equal(handshakes, 1, `${f.name} handshook once`);
          const bad = f.client.compat.incoming.items.filter((m) => m.successful === false ||
            (m.advice && ['handshake', 'none'].includes(m.advice.reconnect)));
          assert.deepEqual(bad.map((m) => h.short(m)), [], `${f.name} got no failed reply and no advice to handshake`);
          assert.deepEqual(f.downs, [], `${f.name} never fired transport:down`);
        }
        for (const f of fayes) assert.equal(h.fayeTransport(f.client).type, f.tr.name, `${f.name} still on ${f.tr.name}`);

        assert.doesNotMatch(server.logs(), /panic|fatal error/i, 'the server log shows no panic');
        t.diagnostic(`${results.length} attacks and ${SEQ_COUNT} publishes in ${publishMs} ms; ` +
          `raw ws: ${raw.connectReplies} connect replies; whole case ${Date.now() - started} ms`);
      });
  });
