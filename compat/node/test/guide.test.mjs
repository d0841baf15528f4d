// The example of the extension authors' guide (examples/notify, built here
// with go) against real faye clients, on one node and on a cluster of three
// nodes on a Redis of the test's own, over WebSocket and long-polling: an
// extension written by following docs/extensions.md (token auth at
// handshake, identity, the users' own channels, a /service handler,
// notifications to one user's clients wherever they are connected).
//
// The faye clients use the guide's own client code: examples/notify/client.mjs
// is copied next to a link to this suite's node_modules and imported.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as h from '../harness.mjs';
import { startRedis } from '../redis.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NODE_DIR = path.resolve(HERE, '..');
const ROOT = path.resolve(NODE_DIR, '../..');
const KEY = 'guide-test-key';
const TOKENS = 'ana-token=ana,bob-token=bob,cy-token=cy';
const goOnPath = process.env.PATH.split(':').some((d) => d && fs.existsSync(path.join(d, 'go')));
const skip = !h.isBayou ? 'Bayou-only: the example is a Bayou server' : !goOnPath ? 'go is not on PATH' : false;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bayou-guide-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Builds examples/notify; resolves the binary's path. */
async function build() {
  const out = path.join(tmp, 'notify');
  const b = spawn('go', ['build', '-o', out, './examples/notify'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  b.stderr.on('data', (c) => { err += c; });
  const [code] = await h.withTimeout(new Promise((r) => b.once('close', (...a) => r(a))), 240_000, 'go build ./examples/notify');
  assert.equal(code, 0, `go build ./examples/notify failed:\n${err}`);
  return out;
}

/** Imports the guide's client functions from a copy of examples/notify/client.mjs that resolves faye here. */
async function guideClient() {
  const dir = path.join(tmp, 'client');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(ROOT, 'examples/notify/client.mjs'), path.join(dir, 'client.mjs'));
  fs.symlinkSync(path.join(NODE_DIR, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return import(pathToFileURL(path.join(dir, 'client.mjs')).href);
}

/** Starts a node of the example; resolves {url, origin, stop()} once it serves. */
async function startNode(bin, extra = []) {
  const port = await h.freePort();
  const child = spawn(bin, ['-addr', `127.0.0.1:${port}`, '-timeout', '3s', '-tokens', TOKENS, '-api-key', KEY, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out = (out + c).slice(-20_000); });
  const exited = new Promise((r) => child.once('close', r));
  const url = await h.waitUntil(() => {
    if (child.exitCode !== null) throw new Error(`the example exited:\n${out}`);
    const m = /serving Bayeux at (\S+)/.exec(out);
    return m && m[1];
  }, 10_000, () => `the example to serve:\n${out}`);
  assert.equal(url, `http://127.0.0.1:${port}/bayeux`);
  return {
    url,
    origin: `http://127.0.0.1:${port}`,
    logs: () => out,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      if (!(await h.settle(exited, 5000, 'the example to exit')).ok) {
        child.kill('SIGKILL');
        await h.settle(exited, 5000, 'the example to die');
      }
    },
  };
}

/** POST /notify of a node, as a back end would; resolves {status, json}. */
async function notify(node, user, text) {
  const res = await fetch(`${node.origin}/notify`, {
    method: 'POST', headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, text }), signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, json: res.ok ? await res.json() : await res.text() };
}

/** The cases, against nodes (one, or three: clients spread over them). */
function cases(getNodes, gc) {
  let n = 0;
  /** The next node, round robin. */
  const next = () => { const nodes = getNodes(); return nodes[n++ % nodes.length]; };

  /** A faye client on the next node, with the guide's token extension and handshake watch. */
  function userClient(t, token, tr) {
    const node = next();
    const client = h.fayeClient(node.url, { websocket: tr.websocket }, t);
    const hs = { user: h.deferred(), refused: h.deferred() };
    gc.withToken(client, token);
    gc.watchHandshake(client, { onUser: hs.user.resolve, onRefused: hs.refused.resolve });
    client.compat.hs = hs;
    client.compat.node = node;
    return client;
  }

  /**
   * Connects the clients (one after the other). It returns nothing: a faye
   * Client is a thenable, which an async function cannot return.
   */
  async function connectAll(...clients) {
    for (const c of clients) await h.fayeConnect(c);
  }

  for (const tr of h.TRANSPORTS) {
    describe(`over ${tr.name}`, () => {
      it('a handshake with a valid token is accepted and names the user; a bad or missing token is refused for good', { timeout: 30_000 }, async (t) => {
        const ana = userClient(t, 'ana-token', tr);
        await h.fayeConnect(ana);
        assert.equal(await h.withTimeout(ana.compat.hs.user.promise, 5000, 'onUser'), 'ana');

        for (const [token, message] of [['not-a-token', 'Invalid token'], ['', 'Token required']]) {
          const bad = userClient(t, token, tr);
          bad.connect();
          const err = await h.withTimeout(bad.compat.hs.refused.promise, 5000, `the refusal of token "${token}"`);
          assert.deepEqual(err, { code: 401, message }, `refusal of "${token}"`);
          const refusal = await bad.compat.incoming.waitFor((m) => m.channel === '/meta/handshake', 1000, 'the refusal');
          assert.equal(refusal.advice && refusal.advice.reconnect, 'none', `faye is told not to retry: ${h.short(refusal)}`);
          assert.equal(bad._advice.reconnect, 'none', 'faye adopted the advice: it makes no more handshakes');
        }
      });

      it('users subscribe and publish; a wildcard that reaches another user\'s channels fails in faye\'s errback', { timeout: 30_000 }, async (t) => {
        const ana = userClient(t, 'ana-token', tr);
        const bob = userClient(t, 'bob-token', tr);
        await connectAll(ana, bob);
        const room = `/chat/${h.uniqueName('room')}`;
        const subA = await h.fayeSubscribe(ana, room);
        const subB = await h.fayeSubscribe(bob, room);
        const own = await h.fayeSubscribe(bob, '/users/bob/**');
        for (const c of [ana, bob]) await h.waitFayeTransport(c, tr.name);

        await h.fayePublish(ana, room, { from: 'ana' });
        await h.fayePublish(bob, '/users/bob/notes', { n: 1 });
        await subA.inbox.waitFor((m) => m.data.from === 'ana', 8000, 'ana to receive her message');
        await subB.inbox.waitFor((m) => m.data.from === 'ana', 8000, 'bob to receive ana\'s message');
        await own.inbox.waitFor((m) => m.data.n === 1, 8000, 'bob to receive on his own channel');

        for (const ch of ['/users/bob/notes', '/users/*', '/**']) {
          const err = h.deferred();
          ana.subscribe(ch, () => {}).errback(err.resolve);
          const e = await h.withTimeout(err.promise, 5000, `the errback of ana's subscribe to ${ch}`);
          assert.equal(e.code, 403, `${ch}: ${h.short(e)}`);
          assert.equal(e.message, 'Forbidden channel', `${ch}: ${h.short(e)}`);
        }
        const pub = await h.settle(ana.publish('/users/bob/notes', { n: 2 }), 5000, 'ana\'s publish on bob\'s channel');
        assert.equal(pub.ok, false, 'ana may not publish on bob\'s channel');
        assert.equal(pub.error.code, 403, h.short(pub.error));
        const forged = await h.settle(ana.publish('/notifications', { from: 'server', text: 'forged' }), 5000, 'a forged notification');
        assert.equal(forged.ok, false, 'only the server publishes notifications');
        await h.fayePublish(bob, '/users/bob/notes', { n: 3 }); // a fence: all of bob's messages before it are in
        await own.inbox.waitFor((m) => m.data.n === 3, 8000, 'the fence');
        assert.deepEqual(own.inbox.items.map((m) => m.data.n), [1, 3]);
      });

      it('faye\'s core cases hold through the extension: wildcards, one copy per client, unicode and 256 KiB', { timeout: 30_000 }, async (t) => {
        const ana = userClient(t, 'ana-token', tr);
        const bob = userClient(t, 'bob-token', tr);
        await connectAll(ana, bob);
        const root = `/chat/${h.uniqueName('core')}`;
        const star = await h.fayeSubscribe(ana, `${root}/*`);
        const exact = await h.fayeSubscribe(ana, `${root}/b`); // ana holds /*, and /b: one copy each
        const stars = await h.fayeSubscribe(bob, `${root}/**`);
        for (const c of [ana, bob]) await h.waitFayeTransport(c, tr.name);

        await h.fayePublish(bob, `${root}/b`, { n: 1 });
        await h.fayePublish(bob, `${root}/b/c`, { n: 2 });
        const unicode = { text: 'café – 😀 \u2028 "quotes" \\ \u0000', 'ключ': 'значение' };
        await h.fayePublish(ana, `${root}/b`, unicode);
        const big = 'abcdefghij0123456789é😀'.repeat(12_000).slice(0, 256 * 1024 - 1);
        await h.fayePublish(ana, `${root}/b/c`, { big }, 10_000);

        await stars.inbox.waitCount(() => true, 4, 10_000, `${root}/** to get all 4`);
        await star.inbox.waitCount(() => true, 2, 8000, `${root}/* to get the 2 on ${root}/b`);
        await h.fayePublish(bob, `${root}/b`, 'fence'); // ana's copies of the earlier messages are in before it
        await star.inbox.waitFor((m) => m.data === 'fence', 8000, 'the fence');
        const got = (c) => h.deliveries(c, root).map((m) => m.channel);
        assert.deepEqual(got(ana), [`${root}/b`, `${root}/b`, `${root}/b`], 'ana: one copy of each /b message, no /b/c');
        assert.deepEqual(got(bob).slice(0, 4), [`${root}/b`, `${root}/b/c`, `${root}/b`, `${root}/b/c`]);
        assert.deepEqual(exact.inbox.items.map((m) => m.data), [{ n: 1 }, unicode, 'fence']);
        assert.deepEqual(stars.inbox.items[2].data, unicode, 'unicode arrives unchanged');
        assert.ok(stars.inbox.items[3].data.big === big, 'the 256 KiB string arrives byte for byte');
      });

      it('a publisher\'s ext does not reach subscribers', { timeout: 30_000 }, async (t) => {
        const ana = userClient(t, 'ana-token', tr);
        const bob = userClient(t, 'bob-token', tr);
        await connectAll(ana, bob);
        ana.addExtension({ outgoing(m, cb) { if (!m.channel.startsWith('/meta/')) m.ext = { secret: 'ana-secret' }; cb(m); } });
        const room = `/chat/${h.uniqueName('ext')}`;
        const sub = await h.fayeSubscribe(bob, room);
        await h.fayePublish(ana, room, 'hi');
        await sub.inbox.waitFor((m) => m.data === 'hi', 8000, 'bob to receive the message');
        assert.ok(!JSON.stringify(bob.compat.incoming.items).includes('ana-secret'), 'bob received ana\'s ext');
      });

      it('/service/notify is answered to the caller; the notification reaches only the addressed user\'s clients', { timeout: 30_000 }, async (t) => {
        const ana = userClient(t, 'ana-token', tr);
        const bobs = [userClient(t, 'bob-token', tr), userClient(t, 'bob-token', tr)];
        const cy = userClient(t, 'cy-token', tr);
        await connectAll(ana, ...bobs, cy);
        const inboxes = new Map();
        for (const c of [...bobs, cy, ana]) inboxes.set(c, (await h.fayeSubscribe(c, '/notifications')).inbox);
        for (const c of [ana, ...bobs, cy]) await h.waitFayeTransport(c, tr.name);

        const call = gc.serviceCalls(ana);
        const text = h.uniqueName('hello');
        const answer = await call('/service/notify', { to: 'bob', text });
        assert.equal(answer.to, 'bob');
        assert.ok(answer.online >= 2, `bob has at least the 2 sessions of this case: ${h.short(answer)}`);
        for (const bob of bobs) {
          await inboxes.get(bob).waitFor((m) => m.data.text === text, 8000, `bob (node ${bob.compat.node.url}) to be notified`);
        }
        const refused = await h.settle(call('/service/notify', { to: 'bob/x', text }), 5000, 'a bad call');
        assert.equal(refused.ok, false);
        assert.match(refused.error.message, /expected/);

        // A back end notifies cy through POST /notify of some node: a fence
        // after which bob's notification would have reached cy, if it could.
        const fence = h.uniqueName('fence');
        const res = await notify(next(), 'cy', fence);
        assert.equal(res.status, 200, h.short(res));
        await inboxes.get(cy).waitFor((m) => m.data.text === fence, 8000, 'cy to get the back end\'s notification');
        assert.deepEqual(inboxes.get(cy).items.map((m) => m.data), [{ from: 'server', text: fence }]);
        for (const bob of bobs) {
          assert.deepEqual(inboxes.get(bob).items.map((m) => m.data), [{ from: 'ana', text }]);
        }
        assert.equal(inboxes.get(ana).count(), 0, 'ana was notified of nothing');
      });
    });
  }

  it('the guide\'s client program notifies a user and prints the answer', { timeout: 30_000 }, async (t) => {
    const bob = userClient(t, 'bob-token', h.TRANSPORTS[0]);
    await connectAll(bob);
    const { inbox } = await h.fayeSubscribe(bob, '/notifications');
    const node = next();
    const run = spawn(process.execPath, [path.join(tmp, 'client', 'client.mjs'), node.url, 'ana-token', 'bob', 'from the program'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    run.stdout.on('data', (c) => { out += c; });
    run.stderr.on('data', (c) => { out += c; });
    const [code] = await h.withTimeout(new Promise((r) => run.once('close', (...a) => r(a))), 15_000, `client.mjs to exit (${out})`);
    assert.equal(code, 0, out);
    assert.match(out, /^connected as ana\nanswer: \{"online":\d+,"to":"bob"\}\n$/, out);
    await inbox.waitFor((m) => m.data.text === 'from the program', 8000, 'bob to be notified');
  });
}

// ---------------------------------------------------------------------------
// The blocks of examples/notify/README.md marked <!-- snippet: notify -->,
// run in order as written, in a directory holding client.mjs (the README
// says "from this directory"). Stand-ins: `go run .` runs the binary built
// here on a free port (the README's http://127.0.0.1:8000 becomes it), and
// `npm ci` is answered by the node_modules linked there. A `prints: X` in a
// block's comments is a line some process of the README prints (bob's
// client prints ana's notification); `# {...}` lines after a command are
// what that command prints.

const DOC_ORIGIN = 'http://127.0.0.1:8000';

/** The fenced blocks of a Markdown file marked <!-- snippet: name -->. */
function markedBlocks(file, name) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== `<!-- snippet: ${name} -->`) continue;
    assert.match(lines[i + 1] || '', /^```sh$/, `${file}:${i + 2}: a sh block after the marker`);
    let end = i + 2;
    while (end < lines.length && lines[end] !== '```') end++;
    out.push(lines.slice(i + 2, end));
    i = end;
  }
  return out;
}

/** The commands of a block, each with the lines it prints and its JSON output. */
function stepsOf(lines) {
  const steps = [];
  for (const line of lines) {
    const printed = /#.*?\bprints:\s*(.+?)\s*$/.exec(line);
    if (!/^\s*#/.test(line) && line.trim() !== '') steps.push({ cmd: line, prints: [], json: [] });
    const cur = steps[steps.length - 1];
    if (printed) cur.prints.push(printed[1]);
    else if (/^#\s*[[{]/.test(line)) cur.json.push(line.replace(/^#\s*/, ''));
  }
  return steps;
}

const PRELUDE = `
go() {
  [ "$1 $2" = "run ." ] || { echo "guide test: no stand-in for: go $*" >&2; return 127; }
  shift 2; exec "$NOTIFY_BIN" "$@" -addr "127.0.0.1:$PORT" -timeout 3s
}
npm() {
  [ "$*" = ci ] && [ -d node_modules/faye ] && return 0
  echo "guide test: no stand-in for: npm $*" >&2; return 127
}
`;

describe('the guide\'s example extension (examples/notify)', { skip, timeout: 300_000 }, () => {
  let bin;
  let gc;
  before(async () => { [bin, gc] = await Promise.all([build(), guideClient()]); }, { timeout: 250_000 });
  // The guide's client functions, for cases declared before the module is imported.
  const guide = {
    withToken: (...a) => gc.withToken(...a),
    watchHandshake: (...a) => gc.watchHandshake(...a),
    serviceCalls: (...a) => gc.serviceCalls(...a),
  };

  it('the README\'s commands print what it says', { timeout: 60_000 }, async () => {
    const blocks = markedBlocks(path.join(ROOT, 'examples/notify/README.md'), 'notify');
    assert.ok(blocks.length >= 4, `the README's marked blocks: ${blocks.length}`);
    const port = await h.freePort();
    const origin = `http://127.0.0.1:${port}`;
    const runs = [];
    const everything = () => runs.map((r) => r.out).join('\n').split('\n').map((l) => l.trim());
    try {
      for (const step of blocks.flatMap(stepsOf)) {
        const cmd = step.cmd.replaceAll(DOC_ORIGIN, origin);
        const child = spawn('bash', ['-c', `${PRELUDE}\n${cmd}`], {
          cwd: path.join(tmp, 'client'), detached: true, stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, NOTIFY_BIN: bin, PORT: String(port), PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` },
        });
        const run = { child, out: '', stdout: '', exited: false, cmd };
        child.stdout.on('data', (c) => { run.out += c; run.stdout += c; });
        child.stderr.on('data', (c) => { run.out += c; });
        child.once('close', () => { run.exited = true; });
        runs.push(run);
        const prints = step.prints.map((p) => p.replaceAll(DOC_ORIGIN, origin));
        await h.waitUntil(() => prints.every((p) => everything().includes(p)) &&
          (step.json.length === 0 || (run.exited && run.stdout.trim().split('\n').join('\n') === step.json.join('\n'))),
        15_000, () => `${cmd}: to print ${h.short([...prints, ...step.json])}; the README's processes printed:\n` +
          runs.map((r) => `$ ${r.cmd}\n${r.out}`).join('\n'));
      }
    } finally {
      for (const r of runs) {
        if (!r.exited) { try { process.kill(-r.child.pid, 'SIGKILL'); } catch { /* gone */ } }
      }
    }
  });

  describe('on one node', () => {
    const nodes = [];
    before(async () => { nodes.push(await startNode(bin)); });
    after(async () => { for (const n of nodes) await n.stop(); });
    cases(() => nodes, guide);
  });

  describe('on 3 nodes on Redis, clients spread over them', () => {
    const nodes = [];
    let redis;
    before(async () => {
      redis = await startRedis();
      const ns = h.uniqueName('guide');
      for (let i = 0; i < 3; i++) nodes.push(await startNode(bin, ['-redis', redis.url, '-redis-namespace', ns]));
    }, { timeout: 30_000 });
    after(async () => {
      for (const n of nodes) await n.stop();
      if (redis) redis.stop();
    });
    cases(() => nodes, guide);
  });
});
