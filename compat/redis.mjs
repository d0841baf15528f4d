// A redis-server of a test's own, for the Node and browser suites that run
// several servers as a cluster. It uses Node's built-in modules only, so
// that both suites can import it.
import net from 'node:net';
import { spawn } from 'node:child_process';

/** Resolves a free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true when a Redis on port answers PING. */
function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => resolve(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
  });
}

/** Starts redis-server on a free port; resolves {port, url, stop()} once it answers PING (10 s at most). */
export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' });
  let failure = null;
  child.once('error', (e) => { failure = new Error(`redis-server: ${e.message}`); });
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (failure) throw failure;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, url: `redis://127.0.0.1:${port}/0`, stop: () => child.kill('SIGKILL') };
}
