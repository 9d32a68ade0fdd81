import Module, { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';

/**
 * undici's connection Pool, loaded on its own. The package's entry point also loads fetch, the
 * WebSocket client, the cache, proxy and mock layers — about 14 MB of RSS in every pod — while the
 * sidecar uses the Pool only. undici has no `exports` map, so these files are reachable; they are
 * the very modules `undici` exports (its index.js re-exports pool.js), pinned by the lockfile.
 */
const require = createRequire(import.meta.url);

// undici's client.js loads its HTTP/2 client, and with it node:http2 (about 8 MiB of RSS), when it
// is loaded; that client only runs for a connection that negotiated h2 over TLS (`allowH2`), which
// no pool here offers: they speak HTTP/1.1 over plain TCP to apps on loopback. A stand-in takes
// its place in the module cache, and would fail such a connection with a clear error.
const clientH2 = require.resolve('undici/lib/dispatcher/client-h2.js');
if (!require.cache[clientH2]) {
  const standIn = new Module(clientH2);
  standIn.filename = clientH2;
  standIn.loaded = true;
  standIn.exports = function connectH2(): never {
    throw Object.assign(new Error('HTTP/2 to an upstream is not enabled in sluice-proxy\'s HTTP pools'), { code: 'SLUICE_ERR_UPSTREAM_H2' });
  };
  require.cache[clientH2] = standIn;
}

// As undici's index.js does: request(), stream()... on every dispatcher (outbound uses request()).
Object.assign(require('undici/lib/dispatcher/dispatcher.js').prototype, require('undici/lib/api/index.js'));

export const Pool: typeof UndiciPool = require('undici/lib/dispatcher/pool.js');
export type Pool = UndiciPool;
