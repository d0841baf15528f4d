// The real faye client over TLS (--tls-cert/--tls-key), on WebSocket (wss:)
// and long-polling (https:), trusting the test's self-signed certificate
// through faye's `tls: { ca }` option (no NODE_TLS_REJECT_UNAUTHORIZED).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import * as h from '../harness.mjs';

let server;
let ca;
let dir;

before(async () => {
  if (!h.isBayou) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bayou-tls-'));
  // A self-signed certificate for 127.0.0.1, made for this run.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=bayou test',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  ca = fs.readFileSync(path.join(dir, 'cert.pem'));
  server = await h.startServer({ args: ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')] });
}, { timeout: 15_000 });
after(async () => {
  if (server) await server.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('faye client over TLS', { skip: h.bayouOnly('the reference server has no TLS option') }, () => {
  it('the server prints an https URL and refuses clients that do not trust its certificate', { timeout: 10_000 }, async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+\/bayeux$/);
    const err = await h.withTimeout(new Promise((resolve) => {
      const req = https.request(server.url, { method: 'POST' }, () => resolve(null));
      req.on('error', resolve);
      req.end('[]');
    }), 5000, 'an untrusting request');
    assert.ok(err && /self-signed|self signed/i.test(err.message), `expected a certificate error, got ${err && err.message}`);
  });

  for (const tr of h.TRANSPORTS) {
    it(`subscribes, publishes and receives over ${tr.name}`, { timeout: 20_000 }, async (t) => {
      const ch = `/${h.uniqueName('tls')}/room`;
      const a = h.fayeClient(server.url, { websocket: tr.websocket, tls: { ca } }, t);
      const b = h.fayeClient(server.url, { websocket: tr.websocket, tls: { ca } }, t);
      const sub = await h.fayeSubscribe(a, ch);
      await h.waitFayeTransport(a, tr.name);
      await h.fayeConnect(b);
      await h.fayePublish(b, ch, { over: tr.name });
      await sub.inbox.waitFor((m) => m.data.over === tr.name, 5000, `the message over ${tr.name}`);
      assert.equal(h.fayeTransport(a).type, tr.name, `client still on ${tr.name}`);
    });
  }
});
