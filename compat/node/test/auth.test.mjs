// The real faye 1.4.3 Node client against the bayou binary with its
// authentication extensions (--auth token and --auth jwt), over WebSocket
// and long-polling. The token travels in ext, added by a client-side
// outgoing extension as the faye docs show; these cases check what the
// client sees: refused subscribes reject with the extension's error, and no
// message any client receives carries a token.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as h from '../harness.mjs';

const T = 3; // server --timeout (seconds)
const skip = h.isBayou ? false : 'Bayou-only: the faye reference server has no auth extensions';

/** Adds `ext.token = getToken()` to every message the client sends. */
function addToken(client, getToken) {
  client.addExtension({
    outgoing(message, callback) {
      message.ext = message.ext || {};
      message.ext.token = getToken();
      callback(message);
    },
  });
  return client;
}

/** Subscribes and expects a refusal; returns the faye error ({code, message}). */
async function refusedSubscribe(client, channel) {
  const r = await h.settle(client.subscribe(channel, () => {}), 5000, `subscribe reply for ${channel}`);
  assert.equal(r.ok, false, `subscribe to ${channel} should have been refused`);
  assert.ok(!/timed out/.test(String(r.error && r.error.message)), `no reply to the subscribe to ${channel}: ${r.error}`);
  return r.error;
}

/** Every message the client received, as JSON text (to search for secrets). */
const received = (client) => JSON.stringify(client.compat.incoming.items);

/** An HS256 JSON Web Token. */
function jwtSign(payload, secret) {
  const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

describe('token auth (--auth token --protect /private/**)', { skip }, () => {
  const SECRET = 's3cret';
  let server;
  before(async () => {
    server = await h.startServer({ timeout: T, args: ['--auth', 'token', '--token-secret', SECRET, '--protect', '/private/**'] });
  }, { timeout: 15_000 });
  after(async () => { if (server) await server.stop(); });

  for (const tr of h.TRANSPORTS) {
    describe(`over ${tr.name}`, () => {
      it('refuses a client without the token a subscribe to a protected channel, directly or through /**', { timeout: 20_000 }, async (t) => {
        const anon = h.fayeClient(server.url, { websocket: tr.websocket }, t);
        const open = `/${h.uniqueName('open')}`;
        await h.fayeSubscribe(anon, open); // unprotected channels work
        await h.waitFayeTransport(anon, tr.name);
        for (const ch of [`/private/${h.uniqueName('room')}`, '/**', '/private/*']) {
          const err = await refusedSubscribe(anon, ch);
          assert.equal(err.code, 403, `error code for ${ch}: ${h.short(err)}`);
          assert.equal(err.message, 'Authentication required', `error message for ${ch}: ${h.short(err)}`);
        }
        const pub = await h.settle(h.fayePublish(anon, `/private/${h.uniqueName('x')}`, { n: 1 }), 6000, 'publish ack');
        assert.equal(pub.ok, false, 'an anonymous publish to a protected channel must be refused');
        assert.equal(pub.error.code, 403, h.short(pub.error));
      });

      it('lets a client with the token subscribe and receive; the token never reaches subscribers', { timeout: 20_000 }, async (t) => {
        const ch = `/private/${h.uniqueName('room')}`;
        const open = `/${h.uniqueName('open')}`;
        const a = addToken(h.fayeClient(server.url, { websocket: tr.websocket }, t), () => SECRET);
        const wide = addToken(h.fayeClient(server.url, { websocket: tr.websocket }, t), () => SECRET);
        const anon = h.fayeClient(server.url, { websocket: tr.websocket }, t);
        const subA = await h.fayeSubscribe(a, ch);
        await h.fayeSubscribe(wide, '/**'); // allowed once authenticated
        const subAnon = await h.fayeSubscribe(anon, open);
        for (const c of [a, wide, anon]) await h.waitFayeTransport(c, tr.name);

        await h.fayePublish(a, ch, { n: 1 });
        await h.fayePublish(a, open, { n: 2 });
        await subA.inbox.waitFor((m) => m.data.n === 1, 5000, 'A to receive its message on the protected channel');
        await subAnon.inbox.waitFor((m) => m.data.n === 2, 5000, 'the anonymous client to receive the public message');
        await h.waitUntil(() => h.deliveries(wide).length >= 2, 5000, () => `the /** subscriber to get both messages: ${h.short(h.deliveries(wide))}`);

        for (const [name, c] of [['A', a], ['the /** subscriber', wide], ['the anonymous subscriber', anon]]) {
          for (const m of h.deliveries(c)) {
            assert.ok(!(m.ext && 'token' in m.ext), `${name} received a message carrying ext.token: ${h.short(m)}`);
          }
          assert.ok(!received(c).includes(SECRET), `${name} received the secret somewhere: ${h.short(received(c))}`);
        }
      });
    });
  }
});

describe('jwt auth (--auth jwt --jwt-wide-subscriptions)', { skip }, () => {
  const SECRET = 'jwt-test-secret';
  let server;
  before(async () => {
    server = await h.startServer({ timeout: T, args: ['--auth', 'jwt', '--jwt-secret', SECRET, '--jwt-wide-subscriptions'] });
  }, { timeout: 15_000 });
  after(async () => { if (server) await server.stop(); });

  const tokenFor = (sub, ttl = 600, channels = ['/users/{sub}/**']) => jwtSign({ sub, exp: now() + ttl, channels }, SECRET);

  it('refuses handshakes without a token, with an expired one, or with a bad signature', { timeout: 10_000 }, async () => {
    const hs = (ext) => h.rawPost(server.url, { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ext });
    const cases = [
      [undefined, '401::Authentication required', 'handshake'],
      [{ token: tokenFor('u', -10) }, '401::Token expired', 'handshake'],
      [{ token: jwtSign({ sub: 'u', exp: now() + 60 }, 'wrong-secret') }, '401::Invalid token', 'none'],
    ];
    for (const [ext, error, reconnect] of cases) {
      const [reply] = (await hs(ext)).json;
      assert.equal(reply.successful, false, h.short(reply));
      assert.equal(reply.error, error, h.short(reply));
      assert.equal(reply.advice.reconnect, reconnect, h.short(reply));
      assert.equal(reply.clientId, undefined, h.short(reply));
    }
  });

  for (const tr of h.TRANSPORTS) {
    it(`over ${tr.name}: sub u1 gets /users/u1/**, not /users/u2/**, not through /users/* or /**`, { timeout: 25_000 }, async (t) => {
      const u1 = h.uniqueName('ua');
      const u2 = h.uniqueName('ub');
      const adminToken = tokenFor('admin', 600, ['/**']);
      const client = addToken(h.fayeClient(server.url, { websocket: tr.websocket }, t), () => tokenFor(u1));
      const admin = addToken(h.fayeClient(server.url, { websocket: tr.websocket }, t), () => adminToken);

      const own = await h.fayeSubscribe(client, `/users/${u1}/**`);
      await h.waitFayeTransport(client, tr.name);
      for (const ch of [`/users/${u2}/**`, '/users/*']) {
        const err = await refusedSubscribe(client, ch);
        assert.equal(err.code, 403, `error for ${ch}: ${h.short(err)}`);
        assert.equal(err.message, 'Channel not allowed', `error for ${ch}: ${h.short(err)}`);
      }
      const all = await h.fayeSubscribe(client, '/**'); // accepted, but narrowed to u1's channels
      await h.fayeConnect(admin);

      await h.fayePublish(admin, `/users/${u2}/x`, { n: 1 });
      await h.fayePublish(admin, `/users/${u1}/x`, { n: 2 });
      await h.fayePublish(admin, `/users/${u2}/y`, { n: 3 });
      await h.fayePublish(admin, `/users/${u1}/y`, { n: 4 });
      await all.inbox.waitFor((m) => m.data.n === 4, 5000, `/users/${u1}/y through /**`);
      await own.inbox.waitFor((m) => m.data.n === 4, 5000, `/users/${u1}/y through /users/${u1}/**`);

      // What the server really sent (before faye's client-side routing):
      // u1's two messages once each, nothing of u2's.
      const got = h.deliveries(client, '/users/').map((m) => `${m.channel} ${m.data.n}`);
      assert.deepEqual(got, [`/users/${u1}/x 2`, `/users/${u1}/y 4`], `deliveries to u1: ${h.short(got)}`);
      assert.ok(!received(client).includes(adminToken), 'the publisher\'s token reached a subscriber');
    });

    it(`over ${tr.name}: an expired session is told to handshake again and resumes with a fresh token`, { timeout: 30_000 }, async (t) => {
      const u = h.uniqueName('ue');
      let token = tokenFor(u, 3);
      const client = addToken(h.fayeClient(server.url, { websocket: tr.websocket, retry: 1 }, t), () => token);
      const admin = addToken(h.fayeClient(server.url, { websocket: tr.websocket }, t), () => tokenFor('admin', 600, ['/**']));
      const sub = await h.fayeSubscribe(client, `/users/${u}/**`);
      await h.waitFayeTransport(client, tr.name);
      const firstId = client._dispatcher.clientId;

      const refused = await client.compat.incoming.waitFor(
        (m) => m.channel === '/meta/connect' && m.successful === false, 15_000, 'a refused /meta/connect once the token expired');
      assert.equal(refused.error, '401::Token expired', h.short(refused));
      assert.equal(refused.advice && refused.advice.reconnect, 'handshake', `advice of the refused connect: ${h.short(refused)}`);

      token = tokenFor(u, 600); // the application renews its token
      await client.compat.incoming.waitFor(
        (m) => m.channel === '/meta/handshake' && m.successful && m.clientId !== firstId, 15_000, 'a new successful handshake');
      // faye subscribes again after the new handshake.
      await h.waitUntil(() => client.compat.incoming.find((m) => m.channel === '/meta/subscribe' && m.successful &&
        m.clientId === client._dispatcher.clientId), 10_000, 'the subscription renewed on the new session');

      await h.fayeConnect(admin);
      await h.fayePublish(admin, `/users/${u}/after`, { n: 5 });
      await sub.inbox.waitFor((m) => m.data.n === 5, 5000, 'a message on the renewed session');
    });
  }
});
