/**
 * The images install production dependencies only (`npm ci --omit=dev`), so every package product
 * code imports must be a production dependency — and nothing else should be one: each extra
 * package is supply-chain surface in every sidecar and operator image. Then each image keeps only
 * its own packages (package.json `imageDependencies`, pruned by scripts/image-packages.ts): the
 * list must be exactly what its entry point's import graph loads, and the sidecar's tree must
 * leave the operator's Kubernetes client out.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packagesToKeep, pruneForImage, type PackageLock } from '../scripts/image-packages.ts';
import { importGraph, packageOf } from './helpers/import-graph.ts';

const ROOT = resolve(import.meta.dirname, '..');
const PRODUCT = ['lib', 'sidecar/src', 'sidecar/bin', 'operator/src', 'operator/bin'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : [];
  });
}

function importedPackages(): Map<string, string> {
  const found = new Map<string, string>();
  for (const dir of PRODUCT) {
    for (const file of sources(join(ROOT, dir))) {
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s*'([^'.][^']*)'|import\(\s*'([^'.][^']*)'\s*\)/g)) {
        const spec = (m[1] ?? m[2]) as string;
        if (spec.startsWith('node:')) continue;
        found.set(packageOf(spec), file.slice(ROOT.length + 1));
      }
    }
  }
  return found;
}

describe('production dependencies', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const imported = importedPackages();

  it('every package product code imports is a production dependency', () => {
    const missing = [...imported].filter(([name]) => !(name in pkg.dependencies)).map(([name, file]) => `${name} (${file})`);
    expect(missing).toEqual([]);
  });

  it('every production dependency is imported by product code', () => {
    expect(Object.keys(pkg.dependencies).filter((name) => !imported.has(name))).toEqual([]);
  });
});

describe('each image\'s own packages', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; imageDependencies: Record<string, string[]> };
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as PackageLock;
  const ENTRIES = { sidecar: 'sidecar/bin/sluice-proxy.ts', operator: 'operator/bin/sluice-operator.ts' };

  it.each(Object.entries(ENTRIES))('the %s image lists exactly the packages its entry point loads (%s), each a production dependency', (image, entry) => {
    const loaded = [...importGraph(join(ROOT, entry)).packages.keys()].sort();
    expect([...(pkg.imageDependencies[image] ?? [])].sort()).toEqual(loaded);
    for (const name of loaded) expect(pkg.dependencies).toHaveProperty([name]);
  });

  it('resolves the lockfile as npm does: all production dependencies together need exactly the packages npm marks non-dev', () => {
    const all = packagesToKeep(lock, Object.keys(pkg.dependencies));
    const nonDev = Object.keys(lock.packages).filter((p) => p && !lock.packages[p]!.dev);
    expect([...all].sort()).toEqual(nonDev.sort());
  });

  it('the sidecar\'s tree has no Kubernetes client, and the operator\'s has it', () => {
    const sidecar = packagesToKeep(lock, pkg.imageDependencies.sidecar!);
    const operator = packagesToKeep(lock, pkg.imageDependencies.operator!);
    expect([...sidecar].filter((p) => p.includes('@kubernetes/'))).toEqual([]);
    expect(operator.has('node_modules/@kubernetes/client-node')).toBe(true);
    // What the sidecar does load is there, with what it needs in turn.
    for (const p of ['node_modules/ioredis', 'node_modules/undici', 'node_modules/@grpc/grpc-js', 'node_modules/protobufjs', 'node_modules/prom-client']) expect(sidecar.has(p), p).toBe(true);
  });

  it('prunes an installed tree down to the image\'s packages, on disk', () => {
    // What `npm ci --omit=dev` leaves: a directory per non-dev package of the lockfile.
    const dir = mkdtempSync(join(tmpdir(), 'image-packages-'));
    try {
      writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg));
      writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock));
      const installed = Object.keys(lock.packages).filter((p) => p && !lock.packages[p]!.dev);
      for (const p of installed) {
        mkdirSync(join(dir, p), { recursive: true });
        writeFileSync(join(dir, p, 'package.json'), '{}');
      }
      const removed = pruneForImage(dir, 'sidecar');
      const keep = packagesToKeep(lock, pkg.imageDependencies.sidecar!);
      expect(installed.filter((p) => existsSync(join(dir, p))).sort()).toEqual([...keep].sort());
      expect(removed).toContain('node_modules/@kubernetes/client-node');
      expect(() => pruneForImage(dir, 'no-such-image')).toThrow(/imageDependencies\.no-such-image/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
