/**
 * The images install production dependencies only (`npm ci --omit=dev`), so every package product
 * code imports must be a production dependency — and nothing else should be one: each extra
 * package is supply-chain surface in every sidecar and operator image.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const PRODUCT = ['lib', 'sidecar/src', 'sidecar/bin', 'operator/src', 'operator/bin'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : [];
  });
}

/** The package a bare specifier names: `ws`, `@grpc/grpc-js` (from `@grpc/grpc-js/build/x`). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
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
