// The nginx configuration of the README ("Deploy"), deploy/nginx.conf, run
// by Debian's nginx on a free port of 127.0.0.1 in front of bayou: the real
// faye Node client works through it over WebSocket and long-polling; an
// EventSource stream (which faye's Node client cannot open: its Node
// transports are websocket, long-polling and in-process) is read through it
// as a browser's EventSource would; a connect held for bayou's whole
// --timeout comes back, and the same connect through a proxy_read_timeout
// below --timeout gets nginx's 504; bayou with --trusted-proxies counts its
// per-address limits by the X-Forwarded-For that nginx adds.
//
// nginx comes from scripts/nginx-install.sh (make test runs it); without it
// this file fails, it does not skip. The README block is the file itself
// (checked below), so the guide cannot drift from what is tested.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as h from '../harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../../..');
const CONF = path.join(ROOT, 'deploy/nginx.conf');
const DOC_UPSTREAM = 'server 127.0.0.1:8000;';
const DOC_LISTEN = 'listen 80;';
const T = 3; // bayou --timeout (seconds) unless a case says otherwise
const skip = h.bayouOnly('the guide configures bayou, and the X-Forwarded-For case uses bayou\'s --trusted-proxies');

// ---------------------------------------------------------------------------
// nginx

/** The nginx binary: on PATH or Debian's /usr/sbin/nginx. Throws if missing. */
function nginxBinary() {
  const dirs = [...(process.env.PATH || '').split(':'), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const file = dir && path.join(dir, 'nginx');
    if (file && fs.existsSync(file)) return file;
  }
  throw new Error('nginx not found (PATH, /usr/sbin): run scripts/nginx-install.sh (make test does)');
}

/** deploy/nginx.conf with bayou's port and nginx's own; `edit` may change more. */
export function renderConf({ bayouPort, nginxPort, edit = (s) => s }) {
  const text = fs.readFileSync(CONF, 'utf8');
  for (const needle of [DOC_UPSTREAM, DOC_LISTEN]) {
    assert.equal(text.split(needle).length, 2, `deploy/nginx.conf should contain "${needle}" exactly once`);
  }
  return edit(text
    .replace(DOC_UPSTREAM, `server 127.0.0.1:${bayouPort};`)
    .replace(DOC_LISTEN, `listen 127.0.0.1:${nginxPort};`));
}

/** nginx -v prints "nginx version: nginx/1.22.1" on stderr; -e exists since 1.19.5. */
function supportsErrorLogFlag(bin) {
  const { stdout, stderr } = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5000 });
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${stdout}${stderr}`);
  if (!m) return false;
  const [maj, min, patch] = m.slice(1).map(Number);
  return maj > 1 || min > 19 || (min === 19 && patch >= 5);
}

// nginx masters still running, told to stop if this process exits early
// (SIGTERM: the master then stops its workers).
const running = new Set();
process.on('exit', () => { for (const c of running) c.kill('SIGTERM'); });

/**
 * Runs nginx (daemon off, its own prefix in a temp dir with its pid file,
 * temp files and access log; errors to stderr) with `site` included in its
 * http block, listening on `port`. Resolves once the port accepts
 * connections. Returns { port, stop(), logs() }.
 */
async function startNginx(site, port) {
  const bin = nginxBinary();
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'bayou-nginx-'));
  fs.chmodSync(prefix, 0o755); // workers run as nobody when nginx runs as root
  const p = (name) => path.join(prefix, name);
  fs.writeFileSync(p('bayou.conf'), site);
  fs.writeFileSync(p('nginx.conf'), [
    'daemon off;',
    'worker_processes 1;',
    `pid ${p('nginx.pid')};`,
    'error_log stderr notice;',
    'events { worker_connections 256; }',
    'http {',
    `    access_log ${p('access.log')};`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `    ${k}_temp_path ${p(k)};`),
    `    include ${p('bayou.conf')};`,
    '}',
    '',
  ].join('\n'));
  // -e: where nginx logs before it read the configuration (else a file
  // under the compiled-in prefix, which may not be writable).
  const args = ['-p', `${prefix}/`, '-c', p('nginx.conf'), ...(supportsErrorLogFlag(bin) ? ['-e', 'stderr'] : [])];
  let output = '';
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise((r) => child.once('exit', (code, sig) => { running.delete(child); r({ code, sig }); }));
  for (const s of [child.stdout, child.stderr]) s.setEncoding('utf8').on('data', (c) => { output += c; });
  const logs = () => {
    let access = '';
    try { access = fs.readFileSync(p('access.log'), 'utf8').slice(-3000); } catch { /* none yet */ }
    return `--- nginx stderr ---\n${output.slice(-3000)}\n--- access.log ---\n${access}`;
  };
  const nginx = {
    port,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM'); // fast shutdown
        if (!(await h.settle(exited, 3000, 'nginx exit')).ok) {
          child.kill('SIGKILL');
          await h.withTimeout(exited, 3000, 'nginx exit after SIGKILL');
        }
      }
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
  try {
    await h.waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
      return canConnect(port);
    }, 10_000, `nginx to listen on 127.0.0.1:${port}`, 50);
  } catch (e) {
    await nginx.stop().catch(() => {});
    throw new Error(`${e.message}\nnginx ${args.join(' ')}\n${logs()}`);
  }
  return nginx;
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** bayou, and nginx in front of it on the documented configuration (edited by `edit`). */
async function proxied({ timeout = T, args = [], edit } = {}) {
  const bayou = await h.startServer({ timeout, args });
  let nginx;
  try {
    const nginxPort = await h.freePort();
    nginx = await startNginx(renderConf({ bayouPort: bayou.port, nginxPort, edit }), nginxPort);
  } catch (e) {
    await bayou.stop();
    throw e;
  }
  return {
    bayou,
    nginx,
    url: `http://127.0.0.1:${nginx.port}/bayeux`,
    describe: () => `${nginx.logs()}\n--- bayou ---\n${bayou.logs().slice(-2000)}`,
    async stop() { await nginx.stop(); await bayou.stop(); },
  };
}

// ---------------------------------------------------------------------------
// Raw Bayeux over HTTP, with an optional local (source) address

function post(url, messages, { localAddress, ms = 10_000, headers = {} } = {}) {
  const body = Buffer.from(JSON.stringify(messages));
  return h.withTimeout(new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      localAddress,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length, ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { /* an nginx error page */ }
        resolve({ status: res.statusCode, body: text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  }), ms, `POST ${url}`);
}

async function handshake(url, opts = {}) {
  const r = await post(url, [{ channel: '/meta/handshake', version: '1.0',
    supportedConnectionTypes: ['long-polling', 'eventsource'] }], opts);
  assert.equal(r.status, 200, `handshake: HTTP ${r.status} ${r.body}`);
  return r.json[0];
}

/**
 * Opens an EventSource stream as a browser does: GET {mount}/{clientId},
 * Accept: text/event-stream. Returns { status, headers, events (Inbox of the
 * raw event blocks), close() }.
 */
async function eventStream(url, clientId) {
  const events = new h.Inbox('event-stream');
  let req;
  const res = await h.withTimeout(new Promise((resolve, reject) => {
    req = http.get(`${url}/${clientId}`, { agent: false, headers: { Accept: 'text/event-stream' } }, resolve);
    req.on('error', reject);
  }), 5000, 'the EventSource response headers');
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => {
    buf += chunk.replaceAll('\r\n', '\n');
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      events.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
  });
  res.on('error', () => {});
  return { status: res.statusCode, headers: res.headers, events, close: () => req.destroy() };
}

/** The Bayeux messages of an event block "data: [...]", or []. */
function eventMessages(block) {
  const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
  return data ? JSON.parse(data) : [];
}

// ---------------------------------------------------------------------------

describe('nginx in front of bayou, configured as deploy/nginx.conf', { skip }, () => {
  it('the README shows deploy/nginx.conf as it is', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const conf = fs.readFileSync(CONF, 'utf8');
    const blocks = [...readme.matchAll(/^```nginx\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
    assert.equal(blocks.length, 1, 'README.md should have one ```nginx block (its "Deploy" section)');
    assert.equal(blocks[0], conf, 'the README\'s nginx block differs from deploy/nginx.conf: copy the file into it');
  });

  describe('with bayou --timeout 3 behind it', () => {
    let env;
    before(async () => { env = await proxied({ args: ['--trusted-proxies', '127.0.0.1/32'] }); }, { timeout: 30_000 });
    after(async () => { if (env) await env.stop(); });

    for (const tr of h.TRANSPORTS) {
      it(`the faye client subscribes, publishes and receives over ${tr.name}, across held connects`, { timeout: 30_000 }, async (t) => {
        const ch = `/${h.uniqueName('nginx')}/room`;
        const sub = h.fayeClient(env.url, { websocket: tr.websocket }, t);
        const { inbox } = await h.fayeSubscribe(sub, ch);
        await h.waitFayeTransport(sub, tr.name);
        const pub = h.fayeClient(env.url, { websocket: tr.websocket }, t);
        await h.fayeConnect(pub);

        // A connect held for the whole --timeout came back through nginx,
        // successful, and the next one went out: the cycle goes on.
        const connects = (m) => m.channel === '/meta/connect' && m.successful === true;
        await sub.compat.incoming.waitCount(connects, 2, (T + 5) * 1000, 'two successful connect replies');
        assert.equal(sub.compat.incoming.count((m) => m.channel === '/meta/connect' && m.successful === false), 0,
          `no connect failed: ${sub.compat.incoming.describe()}`);

        await h.fayePublish(pub, ch, { via: 'nginx', tr: tr.name });
        await inbox.waitFor((m) => m.data.via === 'nginx', 5000, 'the message through nginx');
        assert.deepEqual(inbox.items.map((m) => m.data), [{ via: 'nginx', tr: tr.name }]);
        for (const c of [sub, pub]) assert.equal(h.fayeTransport(c).type, tr.name, `still on ${tr.name}`);
      });
    }

    it('an EventSource stream carries the messages as they are published', { timeout: 30_000 }, async (t) => {
      const ch = `/${h.uniqueName('nginxes')}/room`;
      const hs = await handshake(env.url);
      assert.equal(hs.successful, true, h.short(hs));
      const stream = await eventStream(env.url, hs.clientId);
      t.after(() => stream.close());
      assert.equal(stream.status, 200, env.describe());
      assert.match(stream.headers['content-type'], /^text\/event-stream/);
      // The stream's first bytes arrive at once: nginx does not buffer it.
      await stream.events.waitFor((b) => /^retry: \d+/m.test(b), 3000, 'the stream\'s retry line');

      const connect = await post(env.url, [{ channel: '/meta/connect', clientId: hs.clientId, connectionType: 'eventsource' }]);
      assert.equal(connect.json?.[0]?.successful, true, connect.body);
      const subscribe = await post(env.url, [{ channel: '/meta/subscribe', clientId: hs.clientId, subscription: ch }]);
      assert.equal(subscribe.json?.[0]?.successful, true, subscribe.body);

      const pub = h.fayeClient(env.url, { websocket: true }, t);
      await h.fayeConnect(pub);
      for (const n of [1, 2]) {
        await h.fayePublish(pub, ch, { n });
        await stream.events.waitFor((b) => eventMessages(b).some((m) => m.channel === ch && m.data.n === n),
          5000, `message ${n} on the stream`);
      }
      const got = stream.events.items.flatMap(eventMessages).filter((m) => m.channel === ch).map((m) => m.data);
      assert.deepEqual(got, [{ n: 1 }, { n: 2 }]);
    });
  });

  describe('client_max_body_size against bayou --max-message-size (both 1 MiB)', () => {
    const MiB = 1 << 20;
    /** An anonymous publish whose JSON body is exactly `size` bytes. */
    const publishOfSize = (channel, size) => {
      const frame = (pad) => JSON.stringify([{ channel, data: { pad } }]);
      return frame('x'.repeat(size - frame('').length));
    };
    let env;
    before(async () => { env = await proxied(); }, { timeout: 30_000 });
    after(async () => { if (env) await env.stop(); });
    const cases = [
      { name: 'a body of exactly 1 MiB reaches bayou and is published', size: MiB, status: 200 },
      { name: 'one byte more: nginx answers 413, as bayou would', size: MiB + 1, status: 413 },
    ];
    for (const c of cases) {
      it(c.name, { timeout: 30_000 }, async (t) => {
        const ch = `/${h.uniqueName('nginxbody')}`;
        const body = publishOfSize(ch, c.size);
        assert.equal(Buffer.byteLength(body), c.size);
        const r = await h.rawPost(env.url, body, 10_000);
        assert.equal(r.status, c.status, r.body.slice(0, 300));
        if (c.status === 200) assert.equal(r.json?.[0]?.successful, true, r.body.slice(0, 300));
        else assert.match(r.body, /nginx/, 'the 413 comes from nginx, before bayou');
        const direct = await h.rawPost(env.bayou.url, body, 10_000);
        assert.equal(direct.status, c.status, `bayou itself: ${direct.body.slice(0, 300)}`);
      });
    }
  });

  describe('proxy_read_timeout against bayou --timeout 5 (a held connect)', () => {
    const cases = [
      { name: 'as documented (60s): the connect comes back after --timeout', edit: undefined, status: 200 },
      { name: 'below --timeout (2s): nginx answers 504', edit: (s) => s.replace(/proxy_read_timeout \S+;/, 'proxy_read_timeout 2s;'), status: 504 },
    ];
    for (const c of cases) {
      it(c.name, { timeout: 30_000 }, async (t) => {
        const env = await proxied({ timeout: 5, edit: c.edit });
        t.after(() => env.stop());
        const hs = await handshake(env.url);
        const started = Date.now();
        // Nothing is published: bayou holds the connect for its --timeout.
        const held = await post(env.url, [{ channel: '/meta/connect', clientId: hs.clientId,
          connectionType: 'long-polling' }], { ms: 15_000 });
        const took = Date.now() - started;
        assert.equal(held.status, c.status, `HTTP ${held.status} after ${took} ms: ${held.body.slice(0, 200)}`);
        if (c.status === 200) {
          assert.equal(held.json[0].successful, true, held.body);
          assert.ok(took >= 4000, `the connect was held for --timeout 5 s, not ${took} ms`);
        } else {
          assert.ok(took >= 1500 && took < 4500, `nginx gave up after its 2 s, not ${took} ms`);
        }
      });
    }
  });

  describe('X-Forwarded-For and --trusted-proxies (one handshake per address)', () => {
    // --handshake-rate 0.001 --handshake-burst 1: each client address may
    // handshake once. Clients connect to nginx from 127.0.0.2 and 127.0.0.3;
    // nginx appends that address to X-Forwarded-For.
    const cases = [
      { name: 'trusting nginx: each client address has its own budget', trust: true, second: true },
      { name: 'without --trusted-proxies: every client is nginx\'s 127.0.0.1', trust: false, second: false },
    ];
    for (const c of cases) {
      it(c.name, { timeout: 30_000 }, async (t) => {
        const args = ['--handshake-rate', '0.001', '--handshake-burst', '1',
          ...(c.trust ? ['--trusted-proxies', '127.0.0.1/32'] : [])];
        const env = await proxied({ args });
        t.after(() => env.stop());
        const a1 = await handshake(env.url, { localAddress: '127.0.0.2' });
        assert.equal(a1.successful, true, `the first handshake from 127.0.0.2: ${h.short(a1)}`);
        const a2 = await handshake(env.url, { localAddress: '127.0.0.2' });
        assert.equal(a2.successful, false, `a second handshake from 127.0.0.2 is over the limit: ${h.short(a2)}`);
        assert.match(a2.error, /^429:/);
        // A client's own X-Forwarded-For does not give it a fresh address:
        // bayou takes the last address that is not a trusted proxy.
        const forged = await handshake(env.url, { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '192.0.2.7' } });
        assert.equal(forged.successful, false, `127.0.0.2 claiming to be 192.0.2.7: ${h.short(forged)}`);
        const b1 = await handshake(env.url, { localAddress: '127.0.0.3' });
        assert.equal(b1.successful, c.second, `the first handshake from 127.0.0.3: ${h.short(b1)}`);
      });
    }
  });
});
