// Each image carries the packages its own entry point loads, not the whole project's production
// dependencies: the sidecar, in every pod, has no use for the operator's Kubernetes client (two
// thirds of the production tree on disk). package.json lists each image's direct packages under
// `imageDependencies` (a test holds each list to its entry point's import graph); this keeps
// those and everything they need, by package-lock.json, and removes the rest from node_modules.
//   node scripts/image-packages.ts <image> [dir]   (dir holds package.json, package-lock.json and
//                                                  the node_modules `npm ci --omit=dev` installed)
// npm has no per-image install short of workspaces, which would split the one package.json that
// the operator, the sidecar and lib share.
import { existsSync, lstatSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface LockPackage {
  dev?: boolean;
  optional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

export interface PackageLock {
  lockfileVersion: number;
  packages: Record<string, LockPackage>;
}

/**
 * Where Node finds `name` when `from` (a lockfile path such as `node_modules/a/node_modules/b`,
 * or '' for the project) requires it: its own node_modules first, then each enclosing one.
 */
export function resolveInLock(lock: PackageLock, from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
    if (candidate in lock.packages) return candidate;
    if (!dir) return undefined;
    const at = dir.lastIndexOf('/node_modules/');
    dir = at < 0 ? '' : dir.slice(0, at);
  }
}

/** The lockfile paths of `roots` and of everything they need at run time. */
export function packagesToKeep(lock: PackageLock, roots: readonly string[]): Set<string> {
  if (lock.lockfileVersion < 2) throw new Error(`package-lock.json v${lock.lockfileVersion} has no "packages" map; lockfile v2 or later is needed`);
  const keep = new Set<string>();
  const queue: { from: string; name: string; optional: boolean }[] = roots.map((name) => ({ from: '', name, optional: false }));
  while (queue.length) {
    const { from, name, optional } = queue.pop()!;
    const path = resolveInLock(lock, from, name);
    if (!path) {
      // An optional dependency npm did not install (another platform's binary, say) is fine.
      if (optional) continue;
      throw new Error(`${name} (needed by ${from || 'the project'}) is not in package-lock.json`);
    }
    if (keep.has(path)) continue;
    keep.add(path);
    const pkg = lock.packages[path]!;
    for (const dep of Object.keys(pkg.dependencies ?? {})) queue.push({ from: path, name: dep, optional: false });
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) queue.push({ from: path, name: dep, optional: true });
    for (const dep of Object.keys(pkg.peerDependencies ?? {})) queue.push({ from: path, name: dep, optional: pkg.peerDependenciesMeta?.[dep]?.optional === true });
  }
  return keep;
}

/** Removes from `dir`'s node_modules every package `packagesToKeep` does not keep; returns them. */
export function pruneForImage(dir: string, image: string): string[] {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { imageDependencies?: Record<string, string[]> };
  const roots = pkg.imageDependencies?.[image];
  if (!roots) throw new Error(`package.json has no imageDependencies.${image} (images: ${Object.keys(pkg.imageDependencies ?? {}).join(', ') || 'none'})`);
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as PackageLock;
  const keep = packagesToKeep(lock, roots);
  const removed: string[] = [];
  // Shortest paths first, so a removed package takes its nested node_modules with it.
  const paths = Object.keys(lock.packages).filter((p) => p.startsWith('node_modules/')).sort((a, b) => a.length - b.length);
  for (const path of paths) {
    if (keep.has(path) || removed.some((r) => path.startsWith(`${r}/`))) continue;
    const at = join(dir, path);
    if (!existsSync(at) && !isLink(at)) continue;
    // A link is removed itself, never what it points at.
    if (isLink(at)) unlinkSync(at);
    else rmSync(at, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const [image, dir = '.'] = process.argv.slice(2);
  if (!image) {
    console.error('usage: node scripts/image-packages.ts <image> [dir]');
    process.exit(2);
  }
  const removed = pruneForImage(resolve(dir), image);
  console.log(`image-packages: ${image} keeps what it loads; removed ${removed.length} packages (${removed.filter((p) => p.split('/node_modules/').length === 1).map((p) => p.slice('node_modules/'.length)).join(' ')})`);
}
