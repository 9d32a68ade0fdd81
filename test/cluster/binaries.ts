/**
 * Where the control plane's binaries come from, in the order envtest users expect:
 *   1. TEST_ASSET_<NAME> (e.g. TEST_ASSET_KUBE_APISERVER), one binary each;
 *   2. KUBEBUILDER_ASSETS, a folder as setup-envtest fills it (etcd, kube-apiserver, kubectl);
 *   3. the cache test/cluster/build.sh builds into (SLUICE_CLUSTER_CACHE, default
 *      ~/.cache/sluice/cluster/bin), which has every binary, kwok and helm included.
 * A binary found nowhere is an error naming the build script: never a skipped test.
 */
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'kwok', 'helm'] as const;
export type BinaryName = (typeof BINARIES)[number];
export type Binaries = Record<BinaryName, string>;

export function cacheBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.SLUICE_CLUSTER_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sluice', 'cluster');
  return join(cache, 'bin');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export class MissingBinaryError extends Error {
  readonly code = 'SLUICE_ERR_MISSING_BINARY';
}

export function findBinary(name: BinaryName, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[`TEST_ASSET_${name.toUpperCase().replaceAll('-', '_')}`];
  const candidates = [fromEnv, env.KUBEBUILDER_ASSETS && join(env.KUBEBUILDER_ASSETS, name), join(cacheBinDir(env), name)];
  for (const c of candidates) if (c && executable(c)) return c;
  throw new MissingBinaryError(
    `${name} not found (looked at TEST_ASSET_${name.toUpperCase().replaceAll('-', '_')}, $KUBEBUILDER_ASSETS and ${cacheBinDir(env)}): ` +
      'run test/cluster/build.sh, which builds the control plane from Go modules',
  );
}

/**
 * kwok's stages (what it does to a Node or Pod, and when): the "fast" set kwok ships — nodes Ready
 * with heartbeats through their Lease, pods Running and Ready at once, deleted pods gone at once —
 * which build.sh copies out of the kwok module next to the binary.
 */
export function findKwokStages(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [env.TEST_ASSET_KWOK_STAGES, join(cacheBinDir(env), 'kwok-stages.yaml')];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.R_OK);
      return c;
    } catch {}
  }
  throw new MissingBinaryError(`kwok's stages not found (TEST_ASSET_KWOK_STAGES, ${join(cacheBinDir(env), 'kwok-stages.yaml')}): run test/cluster/build.sh`);
}

export function findBinaries(env: NodeJS.ProcessEnv = process.env): Binaries {
  return Object.fromEntries(BINARIES.map((n) => [n, findBinary(n, env)])) as Binaries;
}
