// A faye 1.4.3 Node client that subscribes to a channel, counts the
// messages {"seq": N} it receives and reports on stdout, one JSON object a
// line:
//   {"event":"ready","transport":"websocket"}   once subscribed
//   {"event":"done","received":..,"duplicates":..,"outOfOrder":..,"missing":..,"transport":..}
// when --count distinct messages have arrived or --timeout seconds have
// passed since ready, then exits.
//
// Usage: node faye-subscriber.mjs --url URL --channel /ch --count N
//          [--timeout S] [--transport websocket|long-polling]
//
// faye is loaded from compat/node/node_modules (scripts/npm-install.sh).
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../../compat/node/package.json', import.meta.url));
const faye = require('faye');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const url = opt('url');
const channel = opt('channel', '/seq');
const count = Number(opt('count', '10000'));
const timeout = Number(opt('timeout', '60'));
const transport = opt('transport', 'websocket');

const report = (obj, exit) => {
  process.stdout.write(JSON.stringify(obj) + '\n', () => {
    if (exit !== undefined) process.exit(exit);
  });
};

const client = new faye.Client(url);
if (transport === 'long-polling') client.disable('websocket');

let connectionType = null;
client.addExtension({
  outgoing(message, callback) {
    if (message.channel === '/meta/connect') connectionType = message.connectionType;
    callback(message);
  },
});

const seen = new Set();
let duplicates = 0;
let outOfOrder = 0;
let next = 0;
let finished = false;

const finish = () => {
  if (finished) return;
  finished = true;
  report({
    event: 'done', received: seen.size, duplicates, outOfOrder,
    missing: count - seen.size, transport: connectionType,
  }, 0);
};

const sub = client.subscribe(channel, (data) => {
  const seq = data && data.seq;
  if (seen.has(seq)) duplicates++;
  else seen.add(seq);
  if (seq !== next) outOfOrder++;
  next = seq + 1;
  if (seen.size >= count) finish();
});

sub.then(() => {
  report({ event: 'ready', transport: connectionType });
  setTimeout(finish, timeout * 1000);
}, (err) => {
  report({ event: 'error', error: String(err && err.message) }, 2);
});
