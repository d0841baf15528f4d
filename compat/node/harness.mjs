// Test harness for the Node.js compatibility suite: starts a Bayeux server
// (Bayou, or the npm faye reference server), builds real faye / CometD
// clients, and offers bounded waits so that no test can hang.
//
// Server kind: COMPAT_SERVER=faye runs `node faye-server.mjs`; anything else
// runs the Bayou binary named by BAYOU_BIN. COMPAT_VERBOSE=1 copies server
// stderr to ours. COMPAT_FORCE_ALL=1 also runs the Bayou-only cases against
// faye (to watch them fail there for the documented reason).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import util from 'node:util';

import faye from 'faye';
import { CometD } from 'cometd';
import { adapt } from 'cometd-nodejs-client';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const SERVER_KIND = process.env.COMPAT_SERVER === 'faye' ? 'faye' : 'bayou';
export const isBayou = SERVER_KIND === 'bayou';
export const FORCE_ALL = process.env.COMPAT_FORCE_ALL === '1';
const VERBOSE = process.env.COMPAT_VERBOSE === '1';

/** Test option: skip a Bayou-only case on faye (unless COMPAT_FORCE_ALL=1). */
export function bayouOnly(reason) {
  return isBayou || FORCE_ALL ? false : `Bayou-only (faye differs: ${reason})`;
}

export const TRANSPORTS = [
  { name: 'websocket', websocket: true },
  { name: 'long-polling', websocket: false },
];

// ---------------------------------------------------------------------------
// Small promise helpers. Every wait in the suite goes through one of these.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with a readable error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

/** Polls `fn` until it returns a truthy value; returns that value. */
export async function waitUntil(fn, ms, what, every = 20) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= end) {
      const detail = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${ms} ms waiting for ${detail}`);
    }
    await sleep(every);
  }
}

export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** Settles a promise-like into {ok, value|error} within `ms` (never rejects). */
export async function settle(promiseLike, ms, what) {
  try {
    return { ok: true, value: await withTimeout(promiseLike, ms, what) };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * A list of received items with bounded waits on it.
 * inbox.push(x); await inbox.waitFor(pred, ms, 'what'); inbox.count(pred)
 */
export class Inbox {
  constructor(label = 'inbox') {
    this.label = label;
    this.items = [];
    this.waiters = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (w.pred(item)) { this.waiters.delete(w); w.resolve(item); }
    }
  }

  count(pred = () => true) { return this.items.filter(pred).length; }

  find(pred) { return this.items.find(pred); }

  /** Resolves with the first item (already received or future) matching pred. */
  waitFor(pred, ms, what) {
    const found = this.items.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    const d = deferred();
    const w = { pred, resolve: d.resolve };
    this.waiters.add(w);
    return withTimeout(d.promise, ms, `${what} (${this.label} has ${this.items.length} item(s): ${this.describe()})`)
      .finally(() => this.waiters.delete(w));
  }

  /** Waits until at least n items match pred. */
  waitCount(pred, n, ms, what) {
    return waitUntil(() => this.count(pred) >= n, ms,
      () => `${what}: ${this.count(pred)}/${n} so far (${this.label}: ${this.describe()})`);
  }

  describe(max = 6) {
    const tail = this.items.slice(-max).map((x) => short(x));
    return (this.items.length > max ? '… ' : '') + tail.join(' | ');
  }
}

/** Compact one-line rendering for assertion messages (long strings truncated). */
export function short(value, max = 300) {
  const s = typeof value === 'string'
    ? value
    : util.inspect(value, { depth: 4, breakLength: Infinity, maxStringLength: 80, maxArrayLength: 10 });
  return s.length > max ? s.slice(0, max) + '…' : s;
}

let uniq = 0;
/** A channel-name segment unique to this process and call (faye grammar safe). */
export function uniqueName(prefix = 't') {
  uniq += 1;
  return `${prefix}${process.pid.toString(36)}${Date.now().toString(36)}${uniq}`;
}

// ---------------------------------------------------------------------------
// Servers

const children = new Set();
function killChildren() {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { killChildren(); process.exit(130); });
}

/** Asks the kernel for a free port on 127.0.0.1 (listen on 0, close). */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

function serverCommand({ port, mount, timeout, ping, args: extraArgs = [] }) {
  if (SERVER_KIND === 'faye') {
    return {
      cmd: process.execPath,
      args: [path.join(HERE, 'faye-server.mjs'), '--port', String(port), '--mount', mount,
        '--timeout', String(timeout)],
    };
  }
  const bin = process.env.BAYOU_BIN;
  if (!bin) {
    throw new Error('BAYOU_BIN is not set. Build the server (e.g. `go build -o /tmp/bayou ./cmd/bayou` in the ' +
      'repository root) and run with BAYOU_BIN=/tmp/bayou, or run against the reference faye server with ' +
      'COMPAT_SERVER=faye.');
  }
  return {
    cmd: bin,
    args: ['--addr', `127.0.0.1:${port}`, '--mount', mount, '--timeout', String(timeout), '--ping', String(ping),
      ...extraArgs],
  };
}

const READY_RE = /serving Bayeux at (\S+)/;
const READY_TIMEOUT_MS = 10_000;

/**
 * Starts a server and resolves once it printed `serving Bayeux at <URL>`.
 * Returns { url, port, kind, stop(), kill(), restart(), logs() }.
 * restart() brings the server back on the SAME port (for recovery tests).
 * args: extra command-line arguments for the Bayou binary (ignored by the faye
 * reference server), e.g. ['--auth', 'token', '--token-secret', 's3cret'].
 */
export async function startServer({ timeout = 3, ping = 5, port, mount = '/bayeux', args = [] } = {}) {
  const chosenPort = port ?? await freePort();
  const opts = { port: chosenPort, mount, timeout, ping, args };
  let child = null;
  let exited = null; // promise resolved on exit of the current child
  let logText = '';
  const appendLog = (s) => {
    logText += s;
    if (logText.length > 64 * 1024) logText = logText.slice(-48 * 1024);
  };

  const server = {
    kind: SERVER_KIND,
    port: chosenPort,
    url: null,
    logs: () => logText,
    /** SIGTERM, then SIGKILL if the server has not exited after graceMs. */
    async stop({ graceMs = 2000 } = {}) {
      if (!child) return;
      const c = child;
      const done = exited;
      child = null;
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        const graceful = (await settle(done, graceMs, 'server exit after SIGTERM')).ok;
        if (!graceful) {
          appendLog(`\n[harness] server did not exit within ${graceMs} ms of SIGTERM; sending SIGKILL\n`);
          c.kill('SIGKILL');
          await withTimeout(done, 5000, 'server exit after SIGKILL');
        }
      }
      children.delete(c);
    },
    /** SIGKILL at once, as a crash: the server cleans up nothing. */
    async kill() {
      if (!child) return;
      const c = child;
      const done = exited;
      child = null;
      c.kill('SIGKILL');
      await withTimeout(done, 5000, 'server exit after SIGKILL');
      children.delete(c);
    },
    async restart() {
      await server.stop();
      let lastError;
      // The port was just released; retry briefly in case it is not reusable yet.
      for (let attempt = 0; attempt < 5; attempt++) {
        try { await launch(); return server; } catch (e) { lastError = e; await sleep(300); }
      }
      throw lastError;
    },
  };

  async function launch() {
    const { cmd, args } = serverCommand(opts);
    const c = spawn(cmd, args, { cwd: HERE, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(c);
    child = c;
    exited = new Promise((r) => c.once('exit', (code, sig) => { children.delete(c); r({ code, sig }); }));
    const ready = deferred();
    let outBuf = '';
    c.on('error', (e) => ready.reject(new Error(`cannot start ${cmd}: ${e.message}`)));
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (chunk) => {
      appendLog(chunk);
      if (VERBOSE) process.stderr.write(`[server stdout] ${chunk}`);
      outBuf += chunk;
      const m = READY_RE.exec(outBuf);
      if (m) { ready.resolve(m[1]); outBuf = ''; }
    });
    c.stderr.setEncoding('utf8');
    c.stderr.on('data', (chunk) => {
      appendLog(chunk);
      if (VERBOSE) process.stderr.write(`[server stderr] ${chunk}`);
    });
    exited.then(({ code, sig }) => ready.reject(new Error(
      `server exited (code ${code}, signal ${sig}) before printing "serving Bayeux at"; ` +
      `command: ${cmd} ${args.join(' ')}`)));
    let url;
    try {
      url = await withTimeout(ready.promise, READY_TIMEOUT_MS, `"serving Bayeux at" from: ${cmd} ${args.join(' ')}`);
    } catch (e) {
      if (c.exitCode === null) c.kill('SIGKILL');
      children.delete(c);
      child = null;
      throw new Error(`${e.message}\n--- server output ---\n${logText.slice(-4000)}`);
    }
    const printedPort = Number(new URL(url).port);
    if (printedPort !== chosenPort) {
      throw new Error(`server printed ${url} but was asked to listen on port ${chosenPort}`);
    }
    server.url = url;
    return url;
  }

  await launch();
  return server;
}

/** Raw JSON POST to the Bayeux endpoint (as curl would do). Resolves {status, headers, body, json}. */
export function rawPost(url, payload, ms = 5000) {
  const body = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  }), ms, `HTTP POST ${url}`);
}

// ---------------------------------------------------------------------------
// faye 1.4.3 Node clients

/**
 * Creates a faye Node client. websocket:false calls client.disable('websocket')
 * (long-polling only). Every message the client receives (after its own
 * extensions) goes to client.compat.incoming, and every message it sends to
 * client.compat.outgoing, so tests can see replies, advice and handshakes.
 * Pass the node:test context `t` to get the client destroyed after the test.
 */
export function fayeClient(url, { websocket = true, retry, timeout, tls } = {}, t) {
  const options = {};
  if (retry !== undefined) options.retry = retry;
  if (timeout !== undefined) options.timeout = timeout;
  if (tls !== undefined) options.tls = tls; // e.g. { ca } for a server with a self-signed certificate
  const client = new faye.Client(url, options);
  if (!websocket) client.disable('websocket');
  const incoming = new Inbox('faye incoming');
  const outgoing = new Inbox('faye outgoing');
  client.addExtension({
    incoming(message, callback) { incoming.push(structuredClone(message)); callback(message); },
    outgoing(message, callback) { outgoing.push(structuredClone(message)); callback(message); },
  });
  client.compat = { incoming, outgoing, wantWebsocket: websocket };
  if (t) t.after(() => destroyFayeClient(client));
  return client;
}

/**
 * The transport a faye client is really using: the dispatcher's current
 * transport object (the one every message goes through) and its
 * connectionType ("websocket", "long-polling", "in-process"). For websocket
 * we also report whether its socket is open (readyState 1).
 */
export function fayeTransport(client) {
  const d = client._dispatcher;
  const tr = d && d._transport;
  if (!tr) return { type: null, open: false };
  const open = tr.connectionType === 'websocket' ? !!(tr._socket && tr._socket.readyState === 1) : true;
  return { type: tr.connectionType, dispatcherType: d.connectionType, open };
}

/**
 * Waits until the faye client has a clientId and settled on `expected`
 * ("websocket" | "long-polling"). After a handshake faye first selects
 * long-polling (mandatory) and switches to websocket once its probe socket
 * opened, so polling here is necessary.
 */
export async function waitFayeTransport(client, expected, ms = 5000) {
  const sentConnect = () => client.compat.outgoing.find(
    (m) => m.channel === '/meta/connect' && m.connectionType === expected && m.clientId === client._dispatcher.clientId);
  await waitUntil(() => {
    const tr = fayeTransport(client);
    return client._dispatcher.clientId && tr.type === expected && tr.dispatcherType === expected && tr.open &&
      sentConnect();
  }, ms, () => `faye client to use transport "${expected}" and send a /meta/connect with that connectionType ` +
    `(now ${short(fayeTransport(client))}, clientId ${client._dispatcher.clientId}, connects sent: ` +
    `${short(client.compat.outgoing.items.filter((m) => m.channel === '/meta/connect').map((m) => m.connectionType))})`);
  return fayeTransport(client);
}

/**
 * Makes a faye client handshake and waits until it settled on the transport it
 * was built for (e.g. for a pure publisher). Returns nothing on purpose: a
 * faye Client is itself a thenable (Deferrable), so returning it from an async
 * function or awaiting it would yield its deferred value, not the client.
 */
export async function fayeConnect(client, ms = 5000) {
  client.connect(); // faye is lazy: this starts the handshake and the connect loop
  await waitFayeTransport(client, client.compat.wantWebsocket ? 'websocket' : 'long-polling', ms);
}

/** Subscribes and waits for the server's ack. Returns {subscription, inbox}. */
export async function fayeSubscribe(client, channel, ms = 5000) {
  const inbox = new Inbox(`faye subscription ${channel}`);
  const subscription = client.subscribe(channel, () => {});
  subscription.withChannel((ch, data) => inbox.push({ channel: ch, data }));
  await withTimeout(subscription, ms, `faye subscribe ack for ${channel}`);
  return { subscription, inbox };
}

/** Publishes and waits for the ack (rejects if the server rejects it). */
export function fayePublish(client, channel, data, ms = 5000) {
  return withTimeout(client.publish(channel, data), ms, `faye publish ack on ${channel}`);
}

/** Best-effort, bounded teardown that leaves no timers or sockets behind. */
export async function destroyFayeClient(client) {
  try {
    const p = client.disconnect();
    if (p) await settle(p, 2000, 'faye disconnect');
  } catch { /* ignore */ }
  // Stop the client for good: no further handshakes/connects, no retries.
  client._advice.reconnect = 'none';
  client._state = client.DISCONNECTED;
  const d = client._dispatcher;
  for (const envelope of d._envelopes.values()) {
    clearTimeout(envelope.timer);
    envelope.timer = null;
    envelope.scheduler && envelope.scheduler.abort && envelope.scheduler.abort();
  }
  d._envelopes.clear();
  try { d.close(); } catch { /* ignore */ }
  // Close any other transport objects (e.g. a websocket probe never selected).
  for (const byUrl of Object.values(d.transports || {})) {
    for (const tr of Object.values(byUrl || {})) {
      try { tr.close(); } catch { /* ignore */ }
      if (tr.removeTimeout) { try { tr.removeTimeout('publish'); } catch { /* ignore */ } }
    }
  }
}

// ---------------------------------------------------------------------------
// CometD 9 clients (through cometd-nodejs-client 2)

let adapted = false;
/**
 * Every WebSocket and long-polling request made by CometD clients in this
 * process. Each records the clientIds seen in the messages it carried (sent
 * or received), which is how a socket/request is attributed to a client: all
 * CometD clients share one `window`, and their WebSocket URL is the same.
 */
export const cometdSockets = [];
export const cometdRequests = [];

function clientIdsIn(text, into) {
  if (typeof text !== 'string' || !text.includes('clientId')) return;
  try {
    for (const m of [].concat(JSON.parse(text))) {
      if (m && typeof m.clientId === 'string') into.add(m.clientId);
    }
  } catch { /* not JSON */ }
}

function ensureAdapted() {
  if (adapted) return;
  adapted = true;
  // Must run before `new CometD()`: installs window.XMLHttpRequest and window.WebSocket.
  adapt();
  const BaseWebSocket = global.window.WebSocket;
  global.window.WebSocket = class TrackedWebSocket extends BaseWebSocket {
    constructor(...args) {
      super(...args);
      this.compatClientIds = new Set();
      // Registered before CometD's own handler, so it sees the handshake reply first.
      this.on('message', (data) => clientIdsIn(String(data), this.compatClientIds));
      cometdSockets.push(this);
    }

    send(data, ...rest) {
      clientIdsIn(data, this.compatClientIds);
      return super.send(data, ...rest);
    }
  };
  const BaseXHR = global.window.XMLHttpRequest;
  global.window.XMLHttpRequest = class TrackedXHR extends BaseXHR {
    send(data) {
      const record = { clientIds: new Set(), done: false };
      clientIdsIn(data, record.clientIds);
      cometdRequests.push(record);
      const finish = () => { record.done = true; };
      const onload = this.onload;
      const onerror = this.onerror;
      const onabort = this.onabort;
      this.onload = (...a) => {
        clientIdsIn(this.responseText, record.clientIds);
        finish();
        return onload && onload.apply(this, a);
      };
      this.onerror = (...a) => { finish(); return onerror && onerror.apply(this, a); };
      this.onabort = (...a) => { finish(); return onabort && onabort.apply(this, a); };
      return super.send(data);
    }
  };
}

/**
 * Creates a CometD client for `url`. websocket:false sets
 * cometd.websocketEnabled = false (long-polling). All client logging
 * (_debug/_info/_warn, which the library and its transports call on the
 * instance) is captured in cometd.compat.log instead of printed; set
 * COMPAT_VERBOSE=1 to print it too.
 */
export function cometdClient(url, { websocket = true, maxNetworkDelay = 3000, name } = {}, t) {
  ensureAdapted();
  const cometd = new CometD(name);
  const log = [];
  for (const level of ['debug', 'info', 'warn']) {
    cometd[`_${level}`] = (...args) => {
      const text = args.map((a) => (typeof a === 'string' ? a : short(a, 400))).join(' ');
      log.push({ level, text, at: Date.now() });
      if (VERBOSE) console.error(`[cometd ${level}] ${text}`);
    };
  }
  cometd.websocketEnabled = websocket;
  cometd.configure({ url, maxNetworkDelay, logLevel: 'debug' });
  const incoming = new Inbox('cometd incoming');
  const outgoing = new Inbox('cometd outgoing');
  cometd.registerExtension('compat-recorder', {
    incoming(message) { incoming.push(structuredClone(message)); return message; },
    outgoing(message) { outgoing.push(structuredClone(message)); return message; },
  });
  cometd.compat = { log, incoming, outgoing, wantWebsocket: websocket };
  if (t) t.after(() => destroyCometdClient(cometd));
  return cometd;
}

/** Log lines that mean the client is unhappy with what the server sent. */
export const COMETD_BAD_LOG = /Mismatched \/meta\/connect|Unknown Bayeux Message|Exception|Unrecognized advice|Could not negotiate/;

export function cometdProblems(cometd) {
  return cometd.compat.log.filter((e) => e.level === 'warn' || COMETD_BAD_LOG.test(e.text));
}

export function describeCometdLog(cometd, n = 15) {
  return cometd.compat.log.slice(-n).map((e) => `  [${e.level}] ${e.text.slice(0, 300)}`).join('\n');
}

/** The CometD transport type in use ("websocket" | "long-polling"), or null. */
export function cometdTransport(cometd) {
  const tr = cometd.getTransport();
  return tr ? tr.type : null;
}

/** Every clientId this CometD client was given (one per successful handshake). */
export function cometdClientIds(cometd) {
  return new Set(cometd.compat.incoming.items
    .filter((m) => m.channel === '/meta/handshake' && m.successful && m.clientId).map((m) => m.clientId));
}

const carries = (ids, record) => [...record].some((id) => ids.has(id));

/** WebSockets that carried this client's messages (readyState 1 = open, 3 = closed). */
export function cometdOwnSockets(cometd) {
  const ids = cometdClientIds(cometd);
  return cometdSockets.filter((ws) => carries(ids, ws.compatClientIds));
}

/** Long-polling HTTP requests that carried this client's messages ({done} false = in flight). */
export function cometdOwnRequests(cometd) {
  const ids = cometdClientIds(cometd);
  return cometdRequests.filter((r) => carries(ids, r.clientIds));
}

/** handshake() as a promise of the handshake reply (resolves on success and failure). */
export function cometdHandshake(cometd, ms = 8000) {
  const d = deferred();
  cometd.handshake((reply) => d.resolve(reply));
  return withTimeout(d.promise, ms, 'CometD handshake reply');
}

/** subscribe() as {inbox, reply}: reply is the subscribe callback argument. */
export async function cometdSubscribe(cometd, channel, ms = 5000) {
  const inbox = new Inbox(`cometd subscription ${channel}`);
  const d = deferred();
  const handle = cometd.subscribe(channel, (m) => inbox.push({ channel: m.channel, data: m.data }),
    (reply) => d.resolve(reply));
  const reply = await withTimeout(d.promise, ms, `CometD subscribe reply for ${channel}`);
  return { inbox, reply, handle };
}

/** publish() as a promise of the publish ack (the callback argument). */
export function cometdPublish(cometd, channel, data, ms = 5000) {
  const d = deferred();
  cometd.publish(channel, data, (reply) => d.resolve(reply));
  return withTimeout(d.promise, ms, `CometD publish ack on ${channel}`);
}

/** disconnect() as a promise of the disconnect reply. */
export function cometdDisconnect(cometd, ms = 5000) {
  const d = deferred();
  cometd.disconnect((reply) => d.resolve(reply));
  return withTimeout(d.promise, ms, 'CometD disconnect reply');
}

export async function destroyCometdClient(cometd) {
  if (!cometd.isDisconnected()) {
    await settle(cometdDisconnect(cometd, 2000), 2500, 'CometD disconnect');
  }
  if (!cometd.isDisconnected()) {
    // Disconnect did not complete: abort locally so no timers or sockets stay behind.
    try { cometd.getTransport() && cometd.getTransport().abort(); } catch { /* ignore */ }
    for (const ws of cometdOwnSockets(cometd)) {
      if (ws.readyState !== 3) { try { ws.terminate(); } catch { /* ignore */ } }
    }
  }
}

/**
 * Broadcast deliveries exactly as the server sent them to a client (seen by
 * the recorder extension before the client library's own, client-side
 * wildcard routing, which would otherwise hide extra or missing copies).
 * Optional filter by channel prefix.
 */
export function deliveries(client, prefix = '') {
  return client.compat.incoming.items.filter((m) =>
    m.data !== undefined && typeof m.channel === 'string' && !m.channel.startsWith('/meta/') &&
    m.channel.startsWith(prefix));
}
