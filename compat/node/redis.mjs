// A redis-server of a test's own, for the suites that run bayou nodes as a
// cluster (--redis).
import net from 'node:net';
import { spawn } from 'node:child_process';
import * as h from './harness.mjs';

/** Starts redis-server on a free port; resolves {port, url, stop()} once it answers PING. */
export async function startRedis() {
  const port = await h.freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' });
  const failed = new Promise((_, reject) => child.once('error', (e) => reject(new Error(`redis-server: ${e.message}`))));
  const ping = () => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => resolve(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
  });
  await Promise.race([failed, h.waitUntil(ping, 10_000, `redis-server on port ${port} to answer PING`, 50)]);
  return { port, url: `redis://127.0.0.1:${port}/0`, stop: () => child.kill('SIGKILL') };
}
