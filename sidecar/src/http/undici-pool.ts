import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';

/**
 * undici's connection Pool, loaded on its own. The package's entry point also loads fetch, the
 * WebSocket client, the cache, proxy and mock layers — about 14 MB of RSS in every pod — while the
 * sidecar uses the Pool only. undici has no `exports` map, so these files are reachable; they are
 * the very modules `undici` exports (its index.js re-exports pool.js), pinned by the lockfile.
 */
const require = createRequire(import.meta.url);
// As undici's index.js does: request(), stream()... on every dispatcher (outbound uses request()).
Object.assign(require('undici/lib/dispatcher/dispatcher.js').prototype, require('undici/lib/api/index.js'));

export const Pool: typeof UndiciPool = require('undici/lib/dispatcher/pool.js');
export type Pool = UndiciPool;
