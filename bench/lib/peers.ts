// The Go and Rust peers (bench/peers/): built from pinned module/crate versions by
// bench/peers/build.sh into ~/.cache/sluice/peers, never committed. A bench asks for a peer here;
// if it cannot be built on this machine the bench says so and measures the rest.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const BUILD = resolve(import.meta.dirname, '..', 'peers', 'build.sh');

export type PeerName = 'goproxy' | 'redsync' | 'asynq' | 'gubernator' | 'grpcgo' | 'limitador';

export interface Peer {
  name: PeerName;
  /** The binary in the cache. */
  bin: string;
  /** "<name> <version>", as build.sh recorded it. */
  version: string;
}

/**
 * Builds the peer if it is missing (a cold Go build takes a minute or two, limitador's Rust build
 * much longer) and returns it, or undefined after printing why it could not be built.
 */
export function peer(name: PeerName): Peer | undefined {
  // BENCH_PEERS_NO_BUILD=1: use what is built already, build nothing (a bench run while a peer builds).
  const noBuild = process.env.BENCH_PEERS_NO_BUILD === '1';
  const r = spawnSync('bash', noBuild ? [BUILD, '--print', name] : [BUILD, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 60 * 60_000 });
  const bin = r.stdout?.trim().split('\n').pop();
  if (r.status !== 0 || !bin) {
    console.log(`  peer ${name}: NOT BUILT (bench/peers/build.sh ${noBuild ? '--print ' : ''}${name} exited ${r.status ?? r.signal}); its rows are left out`);
    return undefined;
  }
  return { name, bin, version: readFileSync(join(dirname(bin), 'VERSION'), 'utf8').trim() };
}

/**
 * What a load-loop peer prints as its last stdout line: its own counts, latencies and the CPU it
 * used (getrusage of its own process: user + system), measured around the load loop only.
 */
export interface PeerLoadResult {
  ops: number;
  seconds: number;
  /** CPU seconds of the peer process over the measured loop. */
  cpuSeconds: number;
  p50Ms?: number;
  p99Ms?: number;
  [k: string]: unknown;
}
