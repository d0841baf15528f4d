// A faye client of the notify example (see README.md):
//
//   node client.mjs URL TOKEN            prints the notifications for TOKEN's user
//   node client.mjs URL TOKEN TO TEXT    notifies the user TO, prints the answer
//
// It needs faye (npm install faye@1.4.3). Its functions are the guide's
// (docs/extensions.md): withToken, watchHandshake and serviceCalls.
import { pathToFileURL } from 'node:url';
import faye from 'faye';

// guide:begin js-token
/** Sends token in ext.auth.token of each handshake: the only message that needs it. */
export function withToken(client, token) {
  client.addExtension({
    outgoing(message, callback) {
      if (message.channel === '/meta/handshake') {
        message.ext = { ...message.ext, auth: { token } };
      }
      callback(message);
    },
  });
  return client;
}
// guide:end js-token

// guide:begin js-handshake
/**
 * Calls onUser(user) when a handshake succeeds, and onRefused({code, message})
 * when the server refuses it: faye itself reports neither to the application.
 */
export function watchHandshake(client, { onUser, onRefused }) {
  client.addExtension({
    incoming(message, callback) {
      if (message.channel === '/meta/handshake') {
        if (message.successful) onUser(message.ext && message.ext.user);
        else onRefused(parseError(message.error));
      }
      callback(message);
    },
  });
  return client;
}

/** Splits a Bayeux error such as "401::Invalid token" into {code: 401, message: 'Invalid token'}. */
export function parseError(error) {
  const [code, , ...text] = String(error).split(':');
  return { code: Number(code), message: text.join(':') };
}
// guide:end js-handshake

// guide:begin js-service
/**
 * Returns call(channel, data), which publishes data (an object) on a
 * /service channel and resolves with the server's answer, or rejects with
 * its error: CometD's remoteCall, for faye. The answer is a second reply to
 * the publish, with the same id, that faye hands to no callback; an
 * extension sees it.
 */
export function serviceCalls(client, ms = 10_000) {
  const calls = new WeakMap(); // the data of a call → its promise's settlers
  const byId = new Map(); // the id faye gave the message → the same
  client.addExtension({
    outgoing(message, callback) {
      const call = typeof message.data === 'object' && message.data !== null && calls.get(message.data);
      if (call) byId.set(message.id, call);
      callback(message);
    },
    incoming(message, callback) {
      const call = byId.get(message.id);
      if (call && message.channel.startsWith('/service/')) {
        if (message.data !== undefined) call.settle(message.successful, message.data);
        else if (!message.successful) call.settle(false, parseError(message.error).message);
      }
      callback(message);
    },
  });
  return (channel, data) => new Promise((resolve, reject) => {
    const body = { ...data }; // a fresh object: the key of this call
    const call = {
      settle(ok, value) {
        clearTimeout(timer);
        for (const [id, c] of byId) if (c === call) byId.delete(id);
        if (ok) resolve(value);
        else reject(new Error(String(value)));
      },
    };
    const timer = setTimeout(() => call.settle(false, `no answer on ${channel} in ${ms} ms`), ms);
    calls.set(body, call);
    client.publish(channel, body);
  });
}
// guide:end js-service

async function main([url, token, to, text]) {
  if (!url || !token) {
    console.error('usage: node client.mjs URL TOKEN [TO TEXT]');
    process.exit(2);
  }
  const client = new faye.Client(url);
  withToken(client, token);
  watchHandshake(client, {
    onUser: (user) => console.log(`connected as ${user}`),
    onRefused: (err) => {
      console.log(`refused: ${err.code} ${err.message}`);
      process.exit(1);
    },
  });
  if (to) {
    const call = serviceCalls(client);
    try {
      console.log(`answer: ${JSON.stringify(await call('/service/notify', { to, text }))}`);
    } catch (err) {
      console.log(`failed: ${err.message}`);
      process.exitCode = 1;
    }
    await client.disconnect();
    process.exit();
  }
  // guide:begin js-subscribe
  await client.subscribe('/notifications', (n) => console.log(`notification from ${n.from}: ${n.text}`));
  console.log('waiting for notifications');
  // guide:end js-subscribe
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
