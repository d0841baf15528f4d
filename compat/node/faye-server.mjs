// A reference server: the npm faye 1.4.3 NodeAdapter, used only to check that
// our compatibility tests describe faye's real behaviour, and by the benchmark
// script as the baseline. Usage:
//   node faye-server.mjs [--port N] [--mount /bayeux] [--timeout SECONDS]
// It listens on 127.0.0.1 (port 0 = any free port) and prints one line:
//   faye serving Bayeux at http://127.0.0.1:PORT/bayeux
import http from 'node:http';
import faye from 'faye';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const port = Number(opt('port', '0'));
const mount = opt('mount', '/bayeux');
const timeout = Number(opt('timeout', '25'));

const bayeux = new faye.NodeAdapter({ mount, timeout });
const server = http.createServer((req, res) => {
  res.writeHead(404);
  res.end('not found');
});
bayeux.attach(server);
server.listen(port, '127.0.0.1', () => {
  const { port: p } = server.address();
  console.log(`faye serving Bayeux at http://127.0.0.1:${p}${mount}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
