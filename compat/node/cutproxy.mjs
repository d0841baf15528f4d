// A TCP proxy for tests that need a connection to die the way a network
// failure kills it: cut() resets every open connection pair at once, so the
// client and the server each see a reset (ECONNRESET), with no WebSocket
// close frame, no HTTP response and no FIN. The server's session survives;
// only the connections are gone, which is the case acknowledgements and
// replay exist for.
//
//   const proxy = await startCutProxy(server.port);
//   const client = h.cometdClient(`http://127.0.0.1:${proxy.port}/bayeux`);
//   ...
//   proxy.cut();            // every open connection reset; new ones still accepted
//   proxy.connections();    // pairs open now
//   await proxy.close();    // stop listening and reset everything
//
// drop() turns the open connections into a dead link first: both sides'
// writes still succeed, but the bytes are read and thrown away (dropped()
// counts them), as when a network path dies without a reset. A server that
// writes a message there believes it delivered; drop() then cut() is how a
// message gets lost in flight (faye issue 456), the case acknowledgements
// recover from.
import { once } from 'node:events';
import net from 'node:net';

/**
 * Listens on 127.0.0.1 (a free port) and pipes each accepted connection to
 * 127.0.0.1:targetPort. Resolves to {port, cut(), close(), connections(),
 * cuts(), drop(), dropped()}: cut() returns how many pairs it reset,
 * connections() how many are open, cuts() how many cut() calls reset at
 * least one pair; drop() makes the open pairs discard what they read (until
 * cut) and returns how many, dropped() counts the bytes discarded.
 */
export async function startCutProxy(targetPort) {
  const pairs = new Set(); // {client, upstream}
  let cutCount = 0;
  let droppedBytes = 0;
  let closed = false;

  const kill = (pair) => {
    pairs.delete(pair);
    for (const s of [pair.client, pair.upstream]) {
      if (s.destroyed) continue;
      // resetAndDestroy sends an RST where the socket is a connected TCP
      // socket; a socket still connecting has nothing to reset.
      try { s.resetAndDestroy(); } catch { s.destroy(); }
    }
  };

  const server = net.createServer({ noDelay: true }, (client) => {
    if (closed) { client.resetAndDestroy(); return; }
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true });
    const pair = { client, upstream };
    pairs.add(pair);
    // Either side failing or closing ends the pair. An orderly end (FIN) is
    // passed on as an orderly end by pipe(); an error resets the other side.
    const onError = () => kill(pair);
    client.on('error', onError);
    upstream.on('error', onError);
    const onClose = () => {
      if (!pairs.has(pair)) return;
      if (client.destroyed && upstream.destroyed) pairs.delete(pair);
    };
    client.on('close', onClose);
    upstream.on('close', onClose);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.on('error', () => { /* listen errors reject below; later ones are of no interest */ });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();

  return {
    port,
    /** Resets every open connection pair; returns how many. */
    cut() {
      const n = pairs.size;
      for (const pair of [...pairs]) kill(pair);
      if (n > 0) cutCount += 1;
      return n;
    },
    /** Stops accepting, resets every connection; resolves once closed. */
    async close() {
      if (closed) return;
      closed = true;
      const done = new Promise((resolve) => server.close(() => resolve()));
      for (const pair of [...pairs]) kill(pair);
      await done;
    },
    /** How many connection pairs are open. */
    connections() {
      return pairs.size;
    },
    /**
     * Makes every open pair a dead link: nothing more is passed on either
     * way; what arrives is read and discarded. Returns how many pairs.
     */
    drop() {
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        for (const s of [client, upstream]) {
          s.on('data', (chunk) => { droppedBytes += chunk.length; });
          s.resume(); // unpipe paused it
        }
      }
      return pairs.size;
    },
    /** Bytes read and discarded by dead links since the proxy started. */
    dropped() {
      return droppedBytes;
    },
    /** How many cut() calls found at least one connection to reset. */
    cuts() {
      return cutCount;
    },
  };
}
